//! `read_page`: a page's main content as Markdown, fetched through the SSRF guard (the address
//! comes from a model, or from a page it read) by the built-in reader (`naive`) or Jina's
//! reader service (`jina`), in `CRAWLER_IMPLS` order.

use async_trait::async_trait;
use loquat_core::llm::ToolSpec;
use loquat_core::tools::{Tool, ToolFailure, ToolOutput};
use loquat_docs::extract::BlockKind;
use loquat_providers::web::{Origin, WebClient};
use serde_json::{Value, json};

/// The largest page read.
const MAX_BYTES: usize = 5 << 20;

/// One way of reading a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// Fetch it and keep its main content (scripts, navigation and the like left out).
    Naive,
    /// Jina's reader service (`JINA_READER_API_KEY`, or none for its free tier).
    Jina { key: Option<String> },
}

pub(crate) fn readers_from_env(env: &dyn Fn(&str) -> Option<String>) -> Vec<Reader> {
    let value = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let jina_key = value("JINA_READER_API_KEY").or_else(|| value("JINA_API_KEY"));
    let names = value("CRAWLER_IMPLS").map(|names| crate::list(&names)).unwrap_or_else(|| vec!["naive".to_owned()]);
    let readers: Vec<Reader> = names
        .iter()
        .filter_map(|name| match name.as_str() {
            "naive" => Some(Reader::Naive),
            "jina" => Some(Reader::Jina { key: jina_key.clone() }),
            _ => None,
        })
        .collect();
    if readers.is_empty() { vec![Reader::Naive] } else { readers }
}

pub struct ReadPage {
    spec: ToolSpec,
    readers: Vec<Reader>,
    web: WebClient,
}

impl ReadPage {
    pub fn new(readers: Vec<Reader>, web: WebClient) -> Self {
        let spec = ToolSpec {
            name: "read_page".to_owned(),
            description: "Read a web page: returns its title and main content as Markdown.".to_owned(),
            parameters: json!({
                "type": "object",
                "properties": { "url": { "type": "string", "description": "The page's address (http or https)." } },
                "required": ["url"]
            }),
        };
        Self { spec, readers, web }
    }

    async fn read(&self, reader: &Reader, address: &url::Url) -> Result<String, String> {
        match reader {
            Reader::Naive => {
                let headers = [("accept", "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5")];
                let response = self.web.get(Origin::Untrusted, address.as_str(), &headers, MAX_BYTES).await;
                let response = response.map_err(|error| error.0)?;
                if !(200..300).contains(&response.status) {
                    return Err(format!("the page answered with HTTP {}", response.status));
                }
                let kind = response.content_type.to_ascii_lowercase();
                if kind.contains("html") || kind.is_empty() {
                    // Parsing megabytes of HTML is work for the blocking pool, not a runtime thread.
                    let body = response.body;
                    let parsed = tokio::task::spawn_blocking(move || html_to_markdown(&String::from_utf8_lossy(&body)));
                    parsed.await.map_err(|_| "the page could not be read".to_owned())
                } else if kind.starts_with("text/") || kind.contains("json") {
                    Ok(String::from_utf8_lossy(&response.body).into_owned())
                } else {
                    Err(format!("the page is not text ({})", response.content_type))
                }
            }
            Reader::Jina { key } => {
                let url = format!("https://r.jina.ai/{address}");
                let auth = key.as_ref().map(|key| format!("Bearer {key}"));
                let mut headers = vec![("accept", "application/json")];
                if let Some(auth) = &auth {
                    headers.push(("authorization", auth.as_str()));
                }
                // Jina's address is the administrator's choice; the page's is checked by Jina.
                let response = self.web.get(Origin::Administrator, &url, &headers, MAX_BYTES).await;
                let response = response.map_err(|error| error.0)?;
                if !(200..300).contains(&response.status) {
                    return Err(format!("Jina's reader answered with HTTP {}", response.status));
                }
                let body: Value = serde_json::from_slice(&response.body).map_err(|_| "Jina's answer is not JSON")?;
                let data = &body["data"];
                let title = data["title"].as_str().unwrap_or_default();
                let content = data["content"].as_str().unwrap_or_default();
                Ok(if title.is_empty() { content.to_owned() } else { format!("# {title}\n\n{content}") })
            }
        }
    }
}

/// A page's main content as Markdown: headings, paragraphs and table rows.
fn html_to_markdown(html: &str) -> String {
    let document = loquat_docs::extract::html::extract(html);
    let title = scrape_title(html);
    let mut out = title.map(|title| format!("# {title}\n\n")).unwrap_or_default();
    for block in document.blocks {
        match block.kind {
            BlockKind::Heading(level) => {
                out.push_str(&"#".repeat(usize::from(level.clamp(1, 6))));
                out.push(' ');
                out.push_str(&block.text);
                out.push_str("\n\n");
            }
            BlockKind::Row => {
                out.push_str(&block.text);
                out.push('\n');
            }
            BlockKind::Paragraph => {
                out.push_str(&block.text);
                out.push_str("\n\n");
            }
        }
    }
    out.trim_end().to_owned()
}

/// The `<title>`, found without parsing the page twice in full.
fn scrape_title(html: &str) -> Option<String> {
    let lower = html.get(..html.len().min(64 << 10))?.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = lower[start..].find('>')? + start + 1;
    let end = lower[open_end..].find("</title>")? + open_end;
    let title = html.get(open_end..end)?.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty()).then_some(title)
}

#[async_trait]
impl Tool for ReadPage {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value) -> Result<ToolOutput, ToolFailure> {
        let given = arguments["url"].as_str().unwrap_or_default().trim();
        let address = url::Url::parse(given).map_err(|_| ToolFailure(format!("\"{given}\" is not an address")))?;
        if !matches!(address.scheme(), "http" | "https") {
            return Err(ToolFailure("only http and https pages can be read".to_owned()));
        }
        let mut failures = Vec::new();
        for reader in &self.readers {
            match self.read(reader, &address).await {
                Ok(text) if !text.trim().is_empty() => return Ok(text.into()),
                Ok(_) => failures.push("the page has no text".to_owned()),
                Err(reason) => failures.push(reason),
            }
        }
        Err(ToolFailure(format!("the page could not be read: {}", failures.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_becomes_markdown_without_its_chrome() {
        let html = "<html><head><title>Annual\n report</title><script>evil()</script></head><body>\
                    <nav>Home | About</nav><main><h2>R&amp;D</h2><p>Spending grew 15%.</p>\
                    <table><tr><td>2023</td><td>1.2</td></tr></table></main><footer>©</footer></body></html>";
        let markdown = html_to_markdown(html);
        assert!(markdown.starts_with("# Annual report\n\n## R&D\n\nSpending grew 15%."), "{markdown}");
        assert!(!markdown.contains("Home") && !markdown.contains("evil") && !markdown.contains("©"), "{markdown}");
        assert_eq!(scrape_title("<p>no title</p>"), None);
    }

    #[test]
    fn readers_come_from_crawler_impls() {
        assert_eq!(readers_from_env(&|_| None), [Reader::Naive]);
        let env = |name: &str| match name {
            "CRAWLER_IMPLS" => Some("jina,naive,browserless".to_owned()),
            "JINA_API_KEY" => Some("j".to_owned()),
            _ => None,
        };
        assert_eq!(readers_from_env(&env), [Reader::Jina { key: Some("j".into()) }, Reader::Naive]);
    }
}
