-- The instance's first account (the administrator who set it up) is marked, and at most one
-- account can carry the mark: of several registrations racing to be first, one wins and the
-- others hit this index.
ALTER TABLE users ADD COLUMN first_account BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX users_first_account ON users (first_account) WHERE first_account;
