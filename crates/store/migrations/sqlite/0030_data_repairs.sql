-- One-off repairs of stored data that SQL cannot make the way the application does, run
-- by the application on its next start (`store::leads::run_data_repairs`) and then removed
-- from this list.
CREATE TABLE data_repairs (
    name TEXT PRIMARY KEY
);
-- L-2: a merge that filled in a lead's missing company or name left its weak key empty
-- (fixed with migration 0028); the keys are made again from the leads' company and name
-- (`domain::lead::company_name_key`: Unicode lower case, every kind of space removed).
INSERT INTO data_repairs (name) VALUES ('weak_keys');
