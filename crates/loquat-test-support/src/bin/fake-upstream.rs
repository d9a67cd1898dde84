//! A standalone fake upstream for demos and manual testing: prints its base URL and answers
//! every chat with a short markdown reply (after some reasoning), streamed word by word. The
//! protocol is the first argument (`openai`, the default, `anthropic`, `gemini`, `ollama`,
//! `azure`). With `FAKE_READ_PAGE=<url>`, the first answer first calls the `read_page` tool on
//! that address (to see tool calls on the page).

use std::time::Duration;

use loquat_core::domain::Protocol;
use loquat_test_support::fake_upstream::{FakeUpstream, Reply};

const DEMO: &str = "Here is a **streamed** answer from the fake upstream.\n\n\
| Provider | Protocol |\n|---|---|\n| OpenAI | Chat Completions |\n| vLLM | OpenAI-compatible |\n\n\
```rust\nfn main() {\n    println!(\"Hello from Loquat\");\n}\n```\n\nInline math: $e^{i\\pi} + 1 = 0$.";

#[tokio::main]
async fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "openai".to_owned());
    let Some(protocol) = Protocol::parse(&name) else {
        eprintln!("unknown protocol {name:?}: use openai, anthropic, gemini, ollama or azure");
        std::process::exit(2);
    };
    let fake = FakeUpstream::start(protocol).await;
    fake.set_recording(false);
    fake.set_default_reply(
        Reply::text(DEMO)
            .reasoning("The user wants a demo.")
            .usage(42, 80)
            .delay_between_chunks(Duration::from_millis(40)),
    );
    if let Ok(url) = std::env::var("FAKE_READ_PAGE") {
        let arguments = serde_json::json!({ "url": url }).to_string();
        fake.push_reply(Reply::text("Let me read that page first.").tool_call("read_page", arguments));
    }
    println!("{}", fake.base_url());
    let _ = tokio::signal::ctrl_c().await;
}
