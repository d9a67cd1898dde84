-- A storage quota (MiB of files in all) beside the token and request quotas; NULL is no limit.

ALTER TABLE quotas ADD COLUMN storage_mb INTEGER;
