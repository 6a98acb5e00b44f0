-- A database webhook may call a function instead of a URL.
ALTER TABLE _outpost_webhooks ADD COLUMN function_name TEXT;
