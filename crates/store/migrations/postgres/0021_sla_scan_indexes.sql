-- L-5 the SLA scan (every minute) looks for open sales leads past a deadline. As one query
-- with an OR over two deadlines it read the whole leads table each time (a million leads:
-- a core busy for most of a second, every minute, and capture latency with it). These
-- partial indexes hold only the leads the scan can find — open or accepted, with sales —
-- each ordered by its deadline, and the scan reads each one up to now.
-- Keep in step with the other backend's 0021_sla_scan_indexes.sql (the parity test compares them).

CREATE INDEX leads_sla_first_response ON leads (first_response_due)
    WHERE route = 'sales' AND status IN ('open', 'accepted') AND first_response_at IS NULL;
CREATE INDEX leads_sla_follow_up ON leads (follow_up_due)
    WHERE route = 'sales' AND status IN ('open', 'accepted');
