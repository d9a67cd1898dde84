//! Anthropic Messages request mapping: system messages lifted into `system`, turns repaired
//! into the user/assistant alternation the API requires, content blocks (text, images, tool
//! use, tool results, signed thinking), the required `max_tokens`, sampling and thinking.

use loquat_core::llm::{ChatMessage, ChatRequest, ChatRole, Image, ToolChoice, ToolSpec};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// `max_tokens` when the request sets none (Anthropic requires one).
pub(crate) const DEFAULT_MAX_TOKENS: u32 = 8_192;
/// The output limit of the original Claude 3 models (Haiku, Sonnet, Opus), which refuse more.
const CLAUDE_3_MAX_TOKENS: u32 = 4_096;
/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u32 = 1_024;
/// Room left for the answer after the thinking budget when `max_tokens` is raised for it.
const ANSWER_HEADROOM: u32 = 4_096;
/// The user turn put before a conversation that does not start with one (an assistant's
/// opening message, or only a system prompt): the API requires the first turn to be the user's.
pub(crate) const OPENING_USER_TEXT: &str = "Hello";

#[derive(Debug, Serialize)]
pub(crate) struct WireRequest<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Value>,
    max_tokens: u32,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

pub(crate) fn wire_request(request: &ChatRequest) -> WireRequest<'_> {
    let params = &request.params;
    let tools: Vec<Value> = request.tools.iter().map(wire_tool).collect();
    let forces_tool = !tools.is_empty() && matches!(request.tool_choice, ToolChoice::Required | ToolChoice::Named(_));
    // Anthropic refuses thinking together with a forced tool; the forced tool is what the
    // caller depends on, so thinking yields.
    let budget = request
        .reasoning
        .and_then(|reasoning| reasoning.budget())
        .filter(|budget| *budget > 0 && !forces_tool)
        .map(|budget| budget.max(MIN_THINKING_BUDGET));
    let given = params.max_tokens.filter(|max| *max > 0).unwrap_or_else(|| default_max_tokens(&request.model));
    let (max_tokens, thinking, output_config) = match budget {
        None => (given, None, None),
        Some(budget) if adaptive_thinking_only(&request.model) => {
            let effort = request.reasoning.and_then(|reasoning| reasoning.effort).map_or_else(
                || match budget {
                    0..=4_096 => "low",
                    4_097..=16_384 => "medium",
                    _ => "high",
                },
                |effort| effort.as_str(),
            );
            let max_tokens = given.max(budget.saturating_add(ANSWER_HEADROOM));
            (max_tokens, Some(json!({ "type": "adaptive" })), Some(json!({ "effort": effort })))
        }
        Some(budget) => {
            let max_tokens = given.max(budget.saturating_add(ANSWER_HEADROOM));
            (max_tokens, Some(json!({ "type": "enabled", "budget_tokens": budget })), None)
        }
    };
    // With thinking Anthropic fixes the temperature (1) and refuses other values; its newer
    // models also refuse `temperature` and `top_p` together, so `temperature` wins.
    let temperature =
        params.temperature.filter(|value| value.is_finite() && thinking.is_none()).map(|value| value.clamp(0.0, 1.0));
    let top_p = params
        .top_p
        .filter(|value| value.is_finite() && thinking.is_none() && temperature.is_none())
        .map(|value| value.clamp(0.0, 1.0));
    let tool_choice = (!tools.is_empty()).then(|| match &request.tool_choice {
        ToolChoice::Auto => json!({ "type": "auto" }),
        ToolChoice::None => json!({ "type": "none" }),
        ToolChoice::Required => json!({ "type": "any" }),
        ToolChoice::Named(name) => json!({ "type": "tool", "name": name }),
    });
    let (system, messages) = wire_messages(&request.messages);
    WireRequest {
        model: &request.model,
        system,
        messages,
        max_tokens,
        stream: true,
        temperature,
        top_p,
        thinking,
        output_config,
        tools,
        tool_choice,
    }
}

/// The original Claude 3 models cannot write more than 4096 tokens; everything later can
/// write at least 8192.
fn default_max_tokens(model: &str) -> u32 {
    let model = model.to_ascii_lowercase();
    let claude_3 = ["claude-3-haiku", "claude-3-sonnet", "claude-3-opus"].iter().any(|name| model.contains(name));
    if claude_3 { CLAUDE_3_MAX_TOKENS } else { DEFAULT_MAX_TOKENS }
}

/// Claude 4.7 and later (`claude-opus-4-7`, `claude-sonnet-5`, ...) refuse a fixed thinking
/// budget and only take adaptive thinking steered by an effort. Older names (`claude-3-7-...`,
/// `claude-sonnet-4-5`, `claude-opus-4-20250514`) and unknown ones keep the budget.
pub(crate) fn adaptive_thinking_only(model: &str) -> bool {
    let model = model.to_ascii_lowercase();
    for family in ["opus-", "sonnet-", "haiku-"] {
        let Some(start) = model.find(&format!("claude-{family}")) else { continue };
        let mut parts = model[start + "claude-".len() + family.len()..].split(['-', '.', '@', ':']);
        let number =
            |part: Option<&str>| part.filter(|part| (1..=2).contains(&part.len())).and_then(|p| p.parse().ok());
        let Some(major) = number(parts.next()) else { return false };
        // A date (`-20250514`) is not a minor version.
        let minor: u32 = number(parts.next()).unwrap_or(0);
        return (major, minor) >= (4, 7);
    }
    false
}

fn wire_tool(tool: &ToolSpec) -> Value {
    let mut schema = match &tool.parameters {
        Value::Object(schema) => schema.clone(),
        _ => Map::new(),
    };
    schema.entry("type").or_insert_with(|| json!("object"));
    if schema.get("type") == Some(&json!("object")) {
        schema.entry("properties").or_insert_with(|| json!({}));
    }
    json!({ "name": tool.name, "description": tool.description, "input_schema": schema })
}

/// One turn on the wire: a role and its content blocks.
struct Turn {
    role: &'static str,
    content: Vec<Value>,
}

/// The `system` text and the `messages` array. Anthropic wants strictly alternating turns that
/// start with the user's: consecutive turns of one role are merged (tool results are user
/// turns), empty ones dropped, and a user turn with [`OPENING_USER_TEXT`] is put first when
/// the conversation starts with the assistant or has no turn at all.
pub(crate) fn wire_messages(messages: &[ChatMessage]) -> (Option<String>, Vec<Value>) {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<Turn> = Vec::with_capacity(messages.len() + 1);
    for message in messages {
        let (role, content) = match message.role {
            ChatRole::System => {
                let text = message.content.trim();
                if !text.is_empty() {
                    system.push(text);
                }
                continue;
            }
            ChatRole::User => ("user", user_blocks(message)),
            ChatRole::Tool => ("user", vec![tool_result(message)]),
            ChatRole::Assistant => ("assistant", assistant_blocks(message)),
        };
        match turns.last_mut() {
            _ if content.is_empty() => {}
            Some(last) if last.role == role => last.content.extend(content),
            _ => turns.push(Turn { role, content }),
        }
    }
    for turn in &mut turns {
        // Tool results must open their user turn, and thinking its assistant turn.
        let first = if turn.role == "user" { "tool_result" } else { "thinking" };
        turn.content.sort_by_key(|block| block["type"] != first);
    }
    if turns.first().is_none_or(|turn| turn.role != "user") {
        turns.insert(0, Turn { role: "user", content: vec![text_block(OPENING_USER_TEXT)] });
    }
    // A final assistant turn is a prefill, which must not end with whitespace.
    if let Some(last) = turns.last_mut().filter(|turn| turn.role == "assistant")
        && let Some(block) = last.content.last_mut().filter(|block| block["type"] == "text")
        && let Some(text) = block["text"].as_str()
    {
        block["text"] = json!(text.trim_end());
    }
    let messages = turns.into_iter().map(|turn| json!({ "role": turn.role, "content": turn.content })).collect();
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    (system, messages)
}

fn text_block(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}

/// Images first, then the text (Anthropic's advice for vision prompts); blank text is dropped
/// because the API refuses text blocks without visible characters.
fn user_blocks(message: &ChatMessage) -> Vec<Value> {
    let mut blocks: Vec<Value> = message
        .images
        .iter()
        .map(|image| match image {
            Image::Url(url) => json!({ "type": "image", "source": { "type": "url", "url": url } }),
            Image::Inline { mime_type, data_base64 } => json!({ "type": "image", "source": {
                "type": "base64", "media_type": mime_type, "data": data_base64,
            }}),
        })
        .collect();
    if !message.content.trim().is_empty() {
        blocks.push(text_block(&message.content));
    }
    blocks
}

fn tool_result(message: &ChatMessage) -> Value {
    let mut block =
        json!({ "type": "tool_result", "tool_use_id": message.tool_call_id.as_deref().unwrap_or_default() });
    if !message.content.is_empty() {
        block["content"] = json!(message.content);
    }
    block
}

/// Signed thinking first (unsigned thinking cannot be sent back), then text, then tool uses.
fn assistant_blocks(message: &ChatMessage) -> Vec<Value> {
    let mut blocks = Vec::with_capacity(message.tool_calls.len() + 2);
    if let Some(thinking) = &message.thinking
        && let Some(signature) = thinking.signature.as_deref().filter(|signature| !signature.is_empty())
    {
        blocks.push(json!({ "type": "thinking", "thinking": thinking.text, "signature": signature }));
    }
    if !message.content.trim().is_empty() {
        blocks.push(text_block(&message.content));
    }
    for call in &message.tool_calls {
        let input =
            serde_json::from_str::<Value>(&call.arguments).ok().filter(Value::is_object).unwrap_or_else(|| json!({}));
        blocks.push(json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": input }));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use loquat_core::domain::ModelParams;
    use loquat_core::llm::{ReasoningConfig, ReasoningEffort, Thinking, ToolCall};

    use super::*;

    fn message(role: ChatRole, content: &str) -> ChatMessage {
        ChatMessage::new(role, content)
    }

    fn body(request: &ChatRequest) -> Value {
        serde_json::to_value(wire_request(request)).expect("json")
    }

    fn chat(messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest { model: "claude-sonnet-4-5".into(), messages, ..ChatRequest::default() }
    }

    #[test]
    fn system_messages_go_to_the_top_and_max_tokens_has_a_default() {
        let request = chat(vec![
            message(ChatRole::System, "Be brief."),
            message(ChatRole::User, "Hi"),
            message(ChatRole::System, " Answer in French. "),
        ]);
        let expected = json!({
            "model": "claude-sonnet-4-5",
            "system": "Be brief.\n\nAnswer in French.",
            "messages": [{ "role": "user", "content": [{ "type": "text", "text": "Hi" }] }],
            "max_tokens": DEFAULT_MAX_TOKENS,
            "stream": true,
        });
        assert_eq!(body(&request), expected);
        let old = ChatRequest { model: "claude-3-haiku-20240307".into(), ..request };
        assert_eq!(body(&old)["max_tokens"], 4096);
    }

    #[test]
    fn turns_are_merged_repaired_and_start_with_the_user() {
        let request = chat(vec![
            message(ChatRole::Assistant, "Welcome! How can I help?"),
            message(ChatRole::User, "one"),
            message(ChatRole::User, "   "),
            message(ChatRole::User, "two"),
            message(ChatRole::Assistant, ""),
            message(ChatRole::Assistant, "Sure. "),
        ]);
        let body = body(&request);
        let messages = body["messages"].as_array().expect("messages");
        let roles: Vec<&str> = messages.iter().filter_map(|turn| turn["role"].as_str()).collect();
        assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
        assert_eq!(messages[0]["content"], json!([{ "type": "text", "text": OPENING_USER_TEXT }]));
        assert_eq!(
            messages[2]["content"],
            json!([{ "type": "text", "text": "one" }, { "type": "text", "text": "two" }])
        );
        // The final assistant turn is a prefill: no trailing whitespace.
        assert_eq!(messages[3]["content"], json!([{ "type": "text", "text": "Sure." }]));
        let only_system = chat(vec![message(ChatRole::System, "s")]);
        let only_system = serde_json::to_value(wire_request(&only_system)).expect("json");
        assert_eq!(only_system["messages"][0]["content"][0]["text"], OPENING_USER_TEXT);
    }

    #[test]
    fn tool_calls_and_results_with_signed_thinking() {
        let mut call = message(ChatRole::Assistant, "Checking.");
        call.thinking = Some(Thinking { text: "need weather".into(), signature: Some("sig==".into()) });
        call.tool_calls = vec![
            ToolCall { id: "toolu_1".into(), name: "weather".into(), arguments: r#"{"city":"Paris"}"#.into() },
            ToolCall { id: "toolu_2".into(), name: "time".into(), arguments: "not json".into() },
        ];
        let mut unsigned = message(ChatRole::Assistant, "Done.");
        unsigned.thinking = Some(Thinking { text: "no signature".into(), signature: None });
        let request = chat(vec![
            message(ChatRole::User, "Weather and time?"),
            call,
            ChatMessage::tool_result("toolu_1", "weather", "sunny"),
            ChatMessage::tool_result("toolu_2", "time", ""),
            message(ChatRole::User, "thanks"),
            unsigned,
        ]);
        let body = body(&request);
        assert_eq!(
            body["messages"][1]["content"],
            json!([
                { "type": "thinking", "thinking": "need weather", "signature": "sig==" },
                { "type": "text", "text": "Checking." },
                { "type": "tool_use", "id": "toolu_1", "name": "weather", "input": { "city": "Paris" } },
                { "type": "tool_use", "id": "toolu_2", "name": "time", "input": {} },
            ])
        );
        assert_eq!(
            body["messages"][2],
            json!({ "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny" },
                { "type": "tool_result", "tool_use_id": "toolu_2" },
                { "type": "text", "text": "thanks" },
            ]})
        );
        assert_eq!(body["messages"][3]["content"], json!([{ "type": "text", "text": "Done." }]));
    }

    #[test]
    fn tool_results_open_their_user_turn() {
        let mut call = message(ChatRole::Assistant, "");
        call.tool_calls = vec![ToolCall { id: "t".into(), name: "f".into(), arguments: "{}".into() }];
        let request = chat(vec![
            message(ChatRole::User, "go"),
            call,
            message(ChatRole::User, "also this"),
            ChatMessage::tool_result("t", "f", "done"),
        ]);
        let content = &body(&request)["messages"][2]["content"];
        assert_eq!(content[0]["type"], "tool_result");
        assert_eq!(content[1]["text"], "also this");
    }

    #[test]
    fn images_come_before_the_text() {
        let mut question = message(ChatRole::User, "What is this?");
        question.images = vec![
            Image::Inline { mime_type: "image/png".into(), data_base64: "iVBORw0=".into() },
            Image::Url("https://example.com/cat.jpg".into()),
        ];
        let body = body(&chat(vec![question]));
        assert_eq!(
            body["messages"][0]["content"],
            json!([
                { "type": "image", "source": { "type": "base64", "media_type": "image/png", "data": "iVBORw0=" } },
                { "type": "image", "source": { "type": "url", "url": "https://example.com/cat.jpg" } },
                { "type": "text", "text": "What is this?" },
            ])
        );
    }

    #[test]
    fn sampling_parameters_are_clamped_and_penalties_omitted() {
        let mut request = chat(vec![message(ChatRole::User, "u")]);
        request.params = ModelParams {
            temperature: Some(1.6),
            top_p: Some(0.9),
            presence_penalty: Some(0.5),
            frequency_penalty: Some(0.5),
            max_tokens: Some(300),
        };
        let body = body(&request);
        assert_eq!(body["temperature"], 1.0);
        assert!(body.get("top_p").is_none(), "newer models refuse temperature and top_p together");
        assert!(body.get("presence_penalty").is_none() && body.get("frequency_penalty").is_none());
        assert_eq!(body["max_tokens"], 300);
        request.params = ModelParams { top_p: Some(0.5), ..ModelParams::default() };
        let text = serde_json::to_string(&wire_request(&request)).expect("json");
        assert!(text.contains(r#""top_p":0.5"#), "{text}");
    }

    #[test]
    fn a_thinking_budget_drops_temperature_and_raises_max_tokens() {
        let mut request = chat(vec![message(ChatRole::User, "u")]);
        request.params = ModelParams { temperature: Some(0.3), top_p: Some(0.8), ..ModelParams::default() };
        request.reasoning = Some(ReasoningConfig { effort: Some(ReasoningEffort::Medium), budget_tokens: None });
        let body = body(&request);
        assert_eq!(body["thinking"], json!({ "type": "enabled", "budget_tokens": 8192 }));
        assert_eq!(body["max_tokens"], 8192 + 4096);
        assert!(body.get("temperature").is_none() && body.get("top_p").is_none());

        request.reasoning = Some(ReasoningConfig { effort: None, budget_tokens: Some(100) });
        request.params.max_tokens = Some(32_000);
        let body = serde_json::to_value(wire_request(&request)).expect("json");
        assert_eq!(body["thinking"]["budget_tokens"], 1024, "Anthropic's minimum budget");
        assert_eq!(body["max_tokens"], 32_000);
    }

    #[test]
    fn claude_4_7_and_later_get_adaptive_thinking() {
        for (model, adaptive) in [
            ("claude-opus-4-7", true),
            ("claude-sonnet-5", true),
            ("anthropic.claude-opus-4-8-v1:0", true),
            ("claude-sonnet-4-5-20250929", false),
            ("claude-opus-4-20250514", false),
            ("claude-3-7-sonnet-latest", false),
            ("my-proxy-model", false),
        ] {
            assert_eq!(adaptive_thinking_only(model), adaptive, "{model}");
        }
        let mut request = chat(vec![message(ChatRole::User, "u")]);
        request.model = "claude-opus-4-7".into();
        request.reasoning = Some(ReasoningConfig { effort: None, budget_tokens: Some(20_000) });
        let body = body(&request);
        assert_eq!(
            (&body["thinking"], &body["output_config"]),
            (&json!({ "type": "adaptive" }), &json!({ "effort": "high" }))
        );
    }

    #[test]
    fn tools_and_tool_choice() {
        let mut request = chat(vec![message(ChatRole::User, "u")]);
        request.tools = vec![
            ToolSpec {
                name: "weather".into(),
                description: "Weather by city".into(),
                parameters: json!({ "type": "object", "properties": { "city": { "type": "string" } } }),
            },
            ToolSpec { name: "now".into(), description: "The time".into(), parameters: Value::Null },
        ];
        let body = body(&request);
        assert_eq!(
            body["tools"],
            json!([
                { "name": "weather", "description": "Weather by city", "input_schema": {
                    "type": "object", "properties": { "city": { "type": "string" } } } },
                { "name": "now", "description": "The time", "input_schema": { "type": "object", "properties": {} } },
            ])
        );
        let choices = [
            (ToolChoice::Auto, json!({ "type": "auto" })),
            (ToolChoice::None, json!({ "type": "none" })),
            (ToolChoice::Required, json!({ "type": "any" })),
            (ToolChoice::Named("weather".into()), json!({ "type": "tool", "name": "weather" })),
        ];
        for (choice, expected) in choices {
            request.tool_choice = choice;
            assert_eq!(serde_json::to_value(wire_request(&request)).expect("json")["tool_choice"], expected);
        }
        // A forced tool and thinking do not go together: the tool wins.
        request.reasoning = Some(ReasoningConfig { effort: Some(ReasoningEffort::Low), budget_tokens: None });
        assert!(serde_json::to_value(wire_request(&request)).expect("json").get("thinking").is_none());
        request.tools.clear();
        assert!(serde_json::to_value(wire_request(&request)).expect("json").get("tool_choice").is_none());
    }
}
