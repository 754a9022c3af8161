-- A billing run that cannot finish is failed with the reason, never left running. A failed run
-- is stored as status 'completed' with a failure: changing the status check constraint would
-- mean rebuilding billing_runs on SQLite, which invoices reference.
ALTER TABLE billing_runs ADD COLUMN failure TEXT;
