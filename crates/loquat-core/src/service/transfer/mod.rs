//! Moving conversations in and out: exports (a topic as Markdown or as Loquat's JSON; all of a
//! person's assistants and topics as one JSON document, streamed topic by topic) and imports
//! (Loquat's JSON, LobeChat's export, ChatGPT's `conversations.json` — alone or in its zip —
//! and Markdown), recognised by their content. Imports are idempotent (`batch`: ids derived
//! from the source's keys), bounded (the upload limit, a zip entry's unpacked size, counts) and
//! write only the importing person's rows.

mod batch;
mod chatgpt;
mod fold;
mod lobechat;
mod loquat;
mod markdown;

use std::collections::VecDeque;
use std::io::Read;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde::Deserialize;

pub use batch::{ImportReport, Skip, SkipReason};
pub use lobechat::parse_agent;

pub use markdown::Labels;

use super::Assistants;
use crate::domain::{Assistant, Topic};
use crate::error::{CoreError, CoreResult};
use crate::id::{TopicId, UserId};
use crate::time::Timestamp;
use crate::tree::MessageTree;

/// The largest JSON document read out of a zip (its unpacked size).
const MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;
/// The largest LobeChat export read (it is read as generic JSON, several times its size in
/// memory).
const MAX_GENERIC_JSON_BYTES: usize = 64 * 1024 * 1024;
/// Imports read at once on this node; more wait (each can hold hundreds of megabytes).
static READERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

impl Assistants {
    /// Imports a file the person uploaded (`name` as they named it), whatever of the known
    /// formats it is.
    pub async fn import(&self, user: UserId, name: &str, content: Bytes) -> CoreResult<ImportReport> {
        let name_owned = name.to_owned();
        let _reading = READERS.acquire().await.map_err(|_| CoreError::invalid("import_format"))?;
        let (format, batch) = tokio::task::spawn_blocking(move || read_any(&name_owned, &content))
            .await
            .map_err(|_| CoreError::invalid("import_format"))??;
        let default = self.default_assistant(user).await?;
        let report = batch::write(self.store.as_ref(), user, default.id, format, batch).await?;
        tracing::info!(%user, format, topics = report.topics, messages = report.messages, "import");
        Ok(report)
    }

    /// One topic as Markdown: its shown branch.
    pub async fn export_markdown(&self, user: UserId, id: TopicId, labels: &Labels<'_>) -> CoreResult<(Topic, String)> {
        let topic = self.topic(user, id).await?;
        let messages = self.store.list_messages(user, id).await?;
        let branch = MessageTree::new(&messages).branch(topic.active_leaf_id);
        let shown: Vec<_> = branch.iter().map(|entry| &entry.message).collect();
        let text = markdown::write(&topic.title, &shown, labels);
        Ok((topic, text))
    }

    /// One topic in Loquat's format: its assistant, the files its messages name, every branch.
    pub async fn export_topic(&self, user: UserId, id: TopicId) -> CoreResult<(Topic, String)> {
        let topic = self.topic(user, id).await?;
        let assistant = self.assistant(user, topic.assistant_id).await?;
        let entry = self.topic_entry(user, &topic).await?;
        let mut files: Vec<loquat::FileEntry> = Vec::new();
        for (_, file) in self.store.topic_message_files(user, id).await? {
            if !files.iter().any(|known| known.id == file.id.to_string()) {
                files.push(loquat::FileEntry::of(&file));
            }
        }
        let document = loquat::Document {
            format: loquat::FORMAT.to_owned(),
            version: loquat::VERSION,
            exported_at: Timestamp::now().as_millis(),
            assistants: vec![loquat::AssistantEntry::of(&assistant)],
            files,
            topics: vec![entry],
        };
        let text = serde_json::to_string_pretty(&document).expect("the document's maps have text keys");
        Ok((topic, text))
    }

    /// Everything the person has, in Loquat's format, written as it is read: the assistants and
    /// the files' records first, then one topic at a time (a person's whole history is never in
    /// memory at once).
    pub async fn export_everything(&self, user: UserId) -> CoreResult<BoxStream<'static, CoreResult<Bytes>>> {
        let assistants = self.store.list_assistants(user).await?;
        let files = self.store.list_files(user).await?;
        let mut topics = VecDeque::new();
        for assistant in &assistants {
            topics.extend(self.store.list_topics(user, assistant.id).await?);
        }
        let head = serde_json::json!({
            "format": loquat::FORMAT,
            "version": loquat::VERSION,
            "exported_at": Timestamp::now().as_millis(),
            "assistants": assistants.iter().map(loquat::AssistantEntry::of).collect::<Vec<_>>(),
            "files": files.iter().map(loquat::FileEntry::of).collect::<Vec<_>>(),
        });
        let mut head = head.to_string();
        head.pop(); // the closing brace: the topics follow
        head.push_str(",\"topics\":[");
        let this = self.clone();
        let first = stream::once(async move { Ok(Bytes::from(head)) });
        let rest = stream::unfold((this, topics, true), move |(this, mut topics, first)| async move {
            let topic = topics.pop_front()?;
            let part = match this.topic_entry(user, &topic).await {
                Ok(entry) => {
                    let mut part = if first { Vec::new() } else { b",".to_vec() };
                    part.extend(serde_json::to_vec(&entry).expect("the entry's maps have text keys"));
                    Ok(Bytes::from(part))
                }
                Err(error) => Err(error),
            };
            Some((part, (this, topics, false)))
        });
        let tail = stream::once(async { Ok(Bytes::from_static(b"]}")) });
        Ok(first.chain(rest).chain(tail).boxed())
    }

    async fn topic_entry(&self, user: UserId, topic: &Topic) -> CoreResult<loquat::TopicEntry> {
        let (messages, files, sources, steps) = tokio::join!(
            self.store.list_messages(user, topic.id),
            self.store.topic_message_files(user, topic.id),
            self.store.topic_sources(user, topic.id),
            self.store.topic_tool_steps(user, topic.id),
        );
        Ok(loquat::TopicEntry::of(loquat::TopicParts {
            topic,
            messages: &messages?,
            files: &files?,
            sources: &sources?,
            steps: &steps?,
        }))
    }

    /// A new assistant from an agent in LobeChat's format (a file, or a page fetched by
    /// [`Tools::fetch_document`](super::Tools::fetch_document)).
    pub async fn import_agent(&self, user: UserId, json: &[u8]) -> CoreResult<Assistant> {
        if json.len() > 1024 * 1024 {
            return Err(CoreError::invalid("agent_format"));
        }
        let document: serde_json::Value =
            serde_json::from_slice(json).map_err(|_| CoreError::invalid("agent_format"))?;
        let mut config = parse_agent(&document)?;
        batch::tidy_config(&mut config);
        self.create_assistant(user, config).await
    }

    /// An assistant in LobeChat's agent format (what its agent index and "export agent" hold).
    pub fn export_agent(assistant: &Assistant) -> serde_json::Value {
        lobechat::agent_json(assistant)
    }
}

/// The format `content` is in, read into a batch. Slow for a large file: run off the runtime.
fn read_any(name: &str, content: &[u8]) -> CoreResult<(&'static str, batch::Batch)> {
    if content.starts_with(b"PK\x03\x04") {
        let json = unzip_conversations(content, MAX_UNPACKED_BYTES)?;
        return Ok(("chatgpt", chatgpt::parse(&json)?));
    }
    let first = content.iter().find(|byte| !byte.is_ascii_whitespace()).copied();
    match first {
        Some(b'[') => Ok(("chatgpt", chatgpt::parse(content)?)),
        Some(b'{') => {
            #[derive(Deserialize)]
            struct Probe {
                #[serde(default)]
                format: Option<String>,
            }
            let probe: Probe = serde_json::from_slice(content).map_err(|_| CoreError::invalid("import_format"))?;
            if probe.format.as_deref() == Some(loquat::FORMAT) {
                return Ok(("loquat", loquat::parse(content)?));
            }
            if content.len() > MAX_GENERIC_JSON_BYTES {
                return Err(CoreError::invalid("import_too_large"));
            }
            let document: serde_json::Value =
                serde_json::from_slice(content).map_err(|_| CoreError::invalid("import_format"))?;
            if lobechat::looks_like(&document) {
                return Ok(("lobechat", lobechat::parse(&document)?));
            }
            Err(CoreError::invalid("import_format"))
        }
        _ => {
            let text = std::str::from_utf8(content).map_err(|_| CoreError::invalid("import_format"))?;
            Ok(("markdown", markdown::parse(name, text)?))
        }
    }
}

/// ChatGPT's export archive: its `conversations.json`, unpacked to a bound.
fn unzip_conversations(content: &[u8], limit: u64) -> CoreResult<Vec<u8>> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(content)).map_err(|_| CoreError::invalid("import_format"))?;
    let index = (0..archive.len())
        .find(|index| {
            archive
                .name_for_index(*index)
                .is_some_and(|name| name == "conversations.json" || name.ends_with("/conversations.json"))
        })
        .ok_or_else(|| CoreError::invalid("import_format"))?;
    let entry = archive.by_index(index).map_err(|_| CoreError::invalid("import_format"))?;
    let mut json = Vec::new();
    entry.take(limit + 1).read_to_end(&mut json).map_err(|_| CoreError::invalid("import_format"))?;
    if json.len() as u64 > limit {
        return Err(CoreError::invalid("import_too_large"));
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zipped(name: &str, content: &[u8]) -> Vec<u8> {
        let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        archive.start_file(name, options).expect("entry");
        archive.write_all(content).expect("written");
        archive.finish().expect("finished").into_inner()
    }

    #[test]
    fn a_zip_is_unpacked_only_to_its_bound() {
        // A megabyte of spaces packs into a few kilobytes: read no further than the bound.
        let bomb = zipped("export/conversations.json", &vec![b' '; 1024 * 1024]);
        assert!(bomb.len() < 16 * 1024);
        let refused = unzip_conversations(&bomb, 64 * 1024).expect_err("past the bound");
        assert!(matches!(refused, CoreError::Invalid { code: "import_too_large", .. }));
        assert_eq!(unzip_conversations(&bomb, 2 * 1024 * 1024).expect("within").len(), 1024 * 1024);
        let elsewhere = zipped("notes.txt", b"[]");
        assert!(matches!(unzip_conversations(&elsewhere, 1024), Err(CoreError::Invalid { code: "import_format", .. })));
    }

    #[test]
    fn markdown_headings_in_code_are_text() {
        let text = "# Fences\n\n## User\n\nShow a heading\n\n## Assistant · gpt-4o\n\n```md\n## User\n```\n";
        let (format, batch) = read_any("fences.md", text.as_bytes()).expect("read");
        assert_eq!(format, "markdown");
        let messages = &batch.topics[0].messages;
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].content, "```md\n## User\n```");
        assert_eq!(messages[1].model.as_deref(), Some("gpt-4o"));
        assert_eq!(batch.topics[0].title, "Fences");
    }
}
