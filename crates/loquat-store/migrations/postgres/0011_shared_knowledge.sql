-- A knowledge base an administrator shares: with everyone, or with one role ('user', 'admin');
-- NULL keeps it private. Readers search it; only its owner changes it.
ALTER TABLE knowledge_bases ADD COLUMN shared_with TEXT;
