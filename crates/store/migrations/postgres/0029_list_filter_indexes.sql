-- The lead list's filters on a million leads (the list pages are read newest first, a page
-- at a time by id): filtered by channel, the list read every lead of the channel through
-- (channel, created_at) and sorted them by id (600 ms for a channel of 125,000 leads); by a
-- status or route few leads have, it walked the whole table looking for them (230–300
-- ms). With (column, id) a page is read straight off the index. The channel report reads
-- leads by creation time (leads_created), not by channel.
DROP INDEX leads_channel;
CREATE INDEX leads_channel ON leads (channel, id);
CREATE INDEX leads_status ON leads (status, id);
CREATE INDEX leads_route ON leads (route, id);
