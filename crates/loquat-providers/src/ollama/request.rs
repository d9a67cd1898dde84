//! Ollama `/api/chat` request mapping: messages (text, base64 images, tool calls with JSON-object
//! arguments, tool results named by `tool_name`, earlier thinking), sampling `options` only when
//! set, tools, and `think` for reasoning models.

use loquat_core::llm::{ChatMessage, ChatRequest, ChatRole, Image, ToolChoice};
use serde::Serialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Serialize)]
pub(crate) struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Options::is_empty")]
    options: Options,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<Value>,
}

/// Sampling parameters (Modelfile names); each one only when set.
#[derive(Debug, Default, Serialize)]
struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
}

impl Options {
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.num_predict.is_none()
    }
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    /// Bare base64 (no `data:` prefix), as Ollama wants it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct WireToolCall<'a> {
    function: WireFunction<'a>,
}

#[derive(Debug, Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    /// A JSON object, not the JSON text OpenAI takes.
    arguments: Value,
}

#[derive(Debug, Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireToolSpec<'a>,
}

#[derive(Debug, Serialize)]
struct WireToolSpec<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

pub(crate) fn wire_request(request: &ChatRequest) -> WireRequest<'_> {
    let params = &request.params;
    // Ollama has no tool choice: "none" is honoured by not offering the tools; "required" and a
    // named tool cannot be expressed, so the tools are offered and the model decides.
    let tools = match request.tool_choice {
        ToolChoice::None => Vec::new(),
        _ => request
            .tools
            .iter()
            .map(|tool| WireTool {
                kind: "function",
                function: WireToolSpec {
                    name: &tool.name,
                    description: &tool.description,
                    parameters: &tool.parameters,
                },
            })
            .collect(),
    };
    WireRequest {
        model: &request.model,
        messages: request
            .messages
            .iter()
            .enumerate()
            .map(|(index, message)| wire_message(request, index, message))
            .collect(),
        stream: true,
        options: Options {
            temperature: params.temperature,
            top_p: params.top_p,
            presence_penalty: params.presence_penalty,
            frequency_penalty: params.frequency_penalty,
            num_predict: params.max_tokens,
        },
        tools,
        think: request.reasoning.map(|reasoning| think(&request.model, reasoning.effort.map(|effort| effort.as_str()))),
    }
}

/// `think: true` turns thinking on (Ollama ≥ 0.9). GPT-OSS ignores booleans and takes a level
/// instead (`low`, `medium`, `high`), so it gets the effort, or `medium` without one.
fn think(model: &str, effort: Option<&'static str>) -> Value {
    if model.to_ascii_lowercase().contains("gpt-oss") { json!(effort.unwrap_or("medium")) } else { json!(true) }
}

fn wire_message<'a>(request: &'a ChatRequest, index: usize, message: &'a ChatMessage) -> WireMessage<'a> {
    let role = match message.role {
        ChatRole::System => "system",
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
        ChatRole::Tool => "tool",
    };
    // Ollama fetches no URLs: only inline images can be sent; URL images are left out.
    let images = message
        .images
        .iter()
        .filter_map(|image| match image {
            Image::Inline { data_base64, .. } => Some(data_base64.as_str()),
            Image::Url(_) => None,
        })
        .collect();
    let tool_calls = message
        .tool_calls
        .iter()
        .map(|call| WireToolCall { function: WireFunction { name: &call.name, arguments: arguments(&call.arguments) } })
        .collect();
    let tool_name = match message.role {
        ChatRole::Tool => message.tool_name.as_deref().or_else(|| called_tool_name(request, index, message)),
        _ => None,
    };
    WireMessage {
        role,
        content: &message.content,
        thinking: message.thinking.as_ref().map(|thinking| thinking.text.as_str()).filter(|text| !text.is_empty()),
        images,
        tool_calls,
        tool_name,
    }
}

/// The name of the call a tool result answers, found by its id among the earlier assistant
/// messages (Ollama matches results to calls by tool name only).
fn called_tool_name<'a>(request: &'a ChatRequest, index: usize, message: &ChatMessage) -> Option<&'a str> {
    let id = message.tool_call_id.as_deref()?;
    request.messages[..index]
        .iter()
        .rev()
        .flat_map(|earlier| earlier.tool_calls.iter())
        .find(|call| call.id == id)
        .map(|call| call.name.as_str())
}

/// The call's JSON text as the JSON object Ollama takes. Text that is not a JSON object (empty,
/// or malformed by the model) becomes `{}`: Ollama refuses anything else.
fn arguments(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(object @ Value::Object(_)) => object,
        _ => Value::Object(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use loquat_core::domain::ModelParams;
    use loquat_core::llm::{ReasoningConfig, ReasoningEffort, Thinking, ToolCall, ToolSpec};

    use super::*;

    fn body(request: &ChatRequest) -> Value {
        serde_json::to_value(wire_request(request)).expect("json")
    }

    #[test]
    fn roles_and_unset_parameters_are_left_out() {
        let mut request = ChatRequest {
            model: "llama3.1:8b".into(),
            messages: vec![
                ChatMessage::new(ChatRole::System, "Be brief."),
                ChatMessage::new(ChatRole::User, "Hi"),
                ChatMessage::new(ChatRole::Assistant, "Hello!"),
            ],
            ..ChatRequest::default()
        };
        assert_eq!(
            body(&request),
            json!({
                "model": "llama3.1:8b",
                "stream": true,
                "messages": [
                    { "role": "system", "content": "Be brief." },
                    { "role": "user", "content": "Hi" },
                    { "role": "assistant", "content": "Hello!" },
                ],
            })
        );
        request.params = ModelParams { temperature: Some(0.7), max_tokens: Some(256), ..ModelParams::default() };
        // The wire text: f32 values are written as typed, and only the set options appear.
        let text = serde_json::to_string(&wire_request(&request)).expect("json");
        assert!(text.contains(r#""options":{"temperature":0.7,"num_predict":256}"#), "{text}");
        request.params = ModelParams {
            top_p: Some(0.5),
            presence_penalty: Some(1.5),
            frequency_penalty: Some(1.0),
            ..ModelParams::default()
        };
        assert_eq!(
            body(&request)["options"],
            json!({ "top_p": 0.5, "presence_penalty": 1.5, "frequency_penalty": 1.0 })
        );
    }

    #[test]
    fn inline_images_are_a_base64_list_and_urls_are_skipped() {
        let mut question = ChatMessage::new(ChatRole::User, "what is in this image?");
        question.images = vec![
            Image::Inline { mime_type: "image/png".into(), data_base64: "iVBORw0KGgo=".into() },
            Image::Url("https://example.com/cat.png".into()),
            Image::Inline { mime_type: "image/jpeg".into(), data_base64: "/9j/4AAQ".into() },
        ];
        let request = ChatRequest { model: "llava".into(), messages: vec![question], ..ChatRequest::default() };
        assert_eq!(body(&request)["messages"][0]["images"], json!(["iVBORw0KGgo=", "/9j/4AAQ"]));
        let mut only_url = ChatMessage::new(ChatRole::User, "and this?");
        only_url.images = vec![Image::Url("https://example.com/dog.png".into())];
        let request = ChatRequest { messages: vec![only_url], ..request };
        assert!(body(&request)["messages"][0].get("images").is_none());
    }

    fn weather() -> ToolSpec {
        ToolSpec {
            name: "get_current_weather".into(),
            description: "Get the current weather for a location".into(),
            parameters: json!({ "type": "object", "properties": { "location": { "type": "string" } } }),
        }
    }

    #[test]
    fn tools_tool_calls_and_tool_results() {
        let mut call = ChatMessage::new(ChatRole::Assistant, "");
        call.thinking = Some(Thinking { text: "I should look it up.".into(), signature: None });
        call.tool_calls = vec![
            ToolCall {
                id: "call_0".into(),
                name: "get_current_weather".into(),
                arguments: r#"{"location":"Paris"}"#.into(),
            },
            ToolCall { id: "call_1".into(), name: "get_time".into(), arguments: String::new() },
        ];
        let mut unnamed = ChatMessage::tool_result("call_1", "", "12:00");
        unnamed.tool_name = None;
        let request = ChatRequest {
            model: "llama3.1".into(),
            messages: vec![
                ChatMessage::new(ChatRole::User, "What is the weather today in Paris?"),
                call,
                ChatMessage::tool_result("call_0", "get_current_weather", "22 degrees celsius"),
                unnamed,
            ],
            tools: vec![weather()],
            ..ChatRequest::default()
        };
        let body = body(&request);
        assert_eq!(
            body["messages"][1],
            json!({
                "role": "assistant",
                "content": "",
                "thinking": "I should look it up.",
                "tool_calls": [
                    { "function": { "name": "get_current_weather", "arguments": { "location": "Paris" } } },
                    { "function": { "name": "get_time", "arguments": {} } },
                ],
            })
        );
        assert_eq!(
            body["messages"][2],
            json!({ "role": "tool", "content": "22 degrees celsius", "tool_name": "get_current_weather" })
        );
        // Without a name, the result is named after the call it answers.
        assert_eq!(body["messages"][3]["tool_name"], "get_time");
        assert_eq!(
            body["tools"],
            json!([{ "type": "function", "function": {
                "name": "get_current_weather",
                "description": "Get the current weather for a location",
                "parameters": { "type": "object", "properties": { "location": { "type": "string" } } },
            }}])
        );
        let request = ChatRequest { tool_choice: ToolChoice::None, ..request };
        assert!(wire_request(&request).tools.is_empty());
    }

    #[test]
    fn malformed_arguments_become_an_empty_object() {
        assert_eq!(arguments(r#"{"a":[1,2]}"#), json!({ "a": [1, 2] }));
        assert_eq!(arguments(""), json!({}));
        assert_eq!(arguments("[1]"), json!({}));
        assert_eq!(arguments("{oops"), json!({}));
    }

    #[test]
    fn reasoning_sends_think() {
        let mut request = ChatRequest {
            model: "qwen3:8b".into(),
            messages: vec![ChatMessage::new(ChatRole::User, "2+2?")],
            ..ChatRequest::default()
        };
        assert!(body(&request).get("think").is_none());
        request.reasoning = Some(ReasoningConfig { effort: Some(ReasoningEffort::High), budget_tokens: None });
        assert_eq!(body(&request)["think"], json!(true));
        request.model = "gpt-oss:20b".into();
        assert_eq!(body(&request)["think"], json!("high"));
        request.reasoning = Some(ReasoningConfig { effort: None, budget_tokens: Some(1_000) });
        assert_eq!(body(&request)["think"], json!("medium"));
    }
}
