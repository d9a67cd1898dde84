-- A member's named role (one the administrator defined, with its own models, tools and quota),
-- given by hand or by the directory's groups at sign-in; NULL: the member role's.
ALTER TABLE users ADD COLUMN named_role TEXT;
