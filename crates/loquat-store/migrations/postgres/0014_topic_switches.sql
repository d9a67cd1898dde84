-- What a topic turned off of its assistant's features ('knowledge', 'tools'); each is on
-- unless a row says otherwise. Replaces topic_knowledge_off.
CREATE TABLE topic_features_off (
    topic_id TEXT NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    feature TEXT NOT NULL,
    PRIMARY KEY (topic_id, feature)
);
INSERT INTO topic_features_off (topic_id, user_id, feature)
    SELECT topic_id, user_id, 'knowledge' FROM topic_knowledge_off;
DROP TABLE topic_knowledge_off;
