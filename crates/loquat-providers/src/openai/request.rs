//! OpenAI Chat Completions request mapping: messages (text, image parts, tool calls and tool
//! results), sampling parameters only when set, tools and tool choice, reasoning effort, and
//! `max_completion_tokens` where OpenAI itself requires it. Shared with Azure.

use loquat_core::llm::{ChatMessage, ChatRequest, ChatRole, Image, ToolChoice};
use serde::Serialize;
use serde_json::{Value, json};

/// Where dialects of the protocol differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Dialect {
    /// OpenAI's own API (and Azure's reasoning models) want `max_completion_tokens`; most
    /// compatible servers only know `max_tokens`.
    pub max_completion_tokens: bool,
    /// Whether to put the model name in the body (Azure names the deployment in the URL).
    pub model_in_body: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    messages: Vec<Value>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

pub(crate) fn wire_request(request: &ChatRequest, dialect: Dialect) -> WireRequest<'_> {
    let params = &request.params;
    let (max_tokens, max_completion_tokens) =
        if dialect.max_completion_tokens { (None, params.max_tokens) } else { (params.max_tokens, None) };
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| {
            json!({ "type": "function", "function": {
                "name": tool.name, "description": tool.description, "parameters": tool.parameters,
            }})
        })
        .collect();
    let tool_choice = (!tools.is_empty()).then(|| match &request.tool_choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Named(name) => json!({ "type": "function", "function": { "name": name } }),
    });
    WireRequest {
        model: dialect.model_in_body.then_some(request.model.as_str()),
        messages: request.messages.iter().map(wire_message).collect(),
        stream: true,
        stream_options: StreamOptions { include_usage: true },
        temperature: params.temperature,
        top_p: params.top_p,
        presence_penalty: params.presence_penalty,
        frequency_penalty: params.frequency_penalty,
        max_tokens,
        max_completion_tokens,
        reasoning_effort: request.reasoning.and_then(|reasoning| reasoning.effort).map(|effort| effort.as_str()),
        tools,
        tool_choice,
    }
}

fn wire_message(message: &ChatMessage) -> Value {
    match message.role {
        ChatRole::System => json!({ "role": "system", "content": message.content }),
        ChatRole::User if message.images.is_empty() => json!({ "role": "user", "content": message.content }),
        ChatRole::User => {
            let mut parts = Vec::with_capacity(message.images.len() + 1);
            if !message.content.is_empty() {
                parts.push(json!({ "type": "text", "text": message.content }));
            }
            for image in &message.images {
                let url = match image {
                    Image::Url(url) => url.clone(),
                    Image::Inline { mime_type, data_base64 } => format!("data:{mime_type};base64,{data_base64}"),
                };
                parts.push(json!({ "type": "image_url", "image_url": { "url": url } }));
            }
            json!({ "role": "user", "content": parts })
        }
        ChatRole::Assistant if message.tool_calls.is_empty() => {
            json!({ "role": "assistant", "content": message.content })
        }
        ChatRole::Assistant => {
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({ "id": call.id, "type": "function", "function": {
                        "name": call.name, "arguments": call.arguments,
                    }})
                })
                .collect();
            let content = if message.content.is_empty() { Value::Null } else { json!(message.content) };
            json!({ "role": "assistant", "content": content, "tool_calls": calls })
        }
        ChatRole::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id.as_deref().unwrap_or_default(),
            "content": message.content,
        }),
    }
}

#[cfg(test)]
mod tests {
    use loquat_core::domain::ModelParams;
    use loquat_core::llm::{ReasoningConfig, ReasoningEffort, ToolCall, ToolSpec};

    use super::*;

    const OPENAI: Dialect = Dialect { max_completion_tokens: false, model_in_body: true };

    #[test]
    fn the_request_body_omits_unset_parameters() {
        let mut request = ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::new(ChatRole::System, "s"), ChatMessage::new(ChatRole::User, "u")],
            ..ChatRequest::default()
        };
        let body = serde_json::to_value(wire_request(&request, OPENAI)).expect("json");
        let expected = r#"{"messages":[{"content":"s","role":"system"},{"content":"u","role":"user"}],"model":"m","stream":true,"stream_options":{"include_usage":true}}"#;
        assert_eq!(body.to_string(), expected);
        request.params = ModelParams { temperature: Some(0.7), max_tokens: Some(5), ..ModelParams::default() };
        // The wire text, as reqwest sends it: f32 values are written as typed (not widened).
        let body = serde_json::to_string(&wire_request(&request, OPENAI)).expect("json");
        assert!(body.contains(r#""temperature":0.7,"max_tokens":5"#), "{body}");
        let body = serde_json::to_value(wire_request(&request, Dialect { max_completion_tokens: true, ..OPENAI }))
            .expect("json");
        assert_eq!(body["max_completion_tokens"], 5);
        assert!(body.get("max_tokens").is_none());
    }

    #[test]
    fn images_tools_tool_results_and_reasoning_effort() {
        let mut question = ChatMessage::new(ChatRole::User, "What is this?");
        question.images = vec![
            Image::Url("https://example.com/cat.png".into()),
            Image::Inline { mime_type: "image/png".into(), data_base64: "iVBORw0=".into() },
        ];
        let mut call = ChatMessage::new(ChatRole::Assistant, "");
        call.tool_calls =
            vec![ToolCall { id: "call_1".into(), name: "weather".into(), arguments: r#"{"city":"Paris"}"#.into() }];
        let request = ChatRequest {
            model: "gpt-4o".into(),
            messages: vec![question, call, ChatMessage::tool_result("call_1", "weather", "sunny")],
            tools: vec![ToolSpec {
                name: "weather".into(),
                description: "Weather by city".into(),
                parameters: json!({ "type": "object", "properties": { "city": { "type": "string" } } }),
            }],
            tool_choice: ToolChoice::Named("weather".into()),
            reasoning: Some(ReasoningConfig { effort: Some(ReasoningEffort::High), budget_tokens: None }),
            ..ChatRequest::default()
        };
        let body = serde_json::to_value(wire_request(&request, OPENAI)).expect("json");
        let parts = &body["messages"][0]["content"];
        assert_eq!(parts[0], json!({ "type": "text", "text": "What is this?" }));
        assert_eq!(parts[1]["image_url"]["url"], "https://example.com/cat.png");
        assert_eq!(parts[2]["image_url"]["url"], "data:image/png;base64,iVBORw0=");
        assert_eq!(body["messages"][1]["content"], Value::Null);
        assert_eq!(body["messages"][1]["tool_calls"][0]["function"]["arguments"], r#"{"city":"Paris"}"#);
        assert_eq!(body["messages"][2], json!({ "role": "tool", "tool_call_id": "call_1", "content": "sunny" }));
        assert_eq!(body["tools"][0]["function"]["name"], "weather");
        assert_eq!(body["tool_choice"]["function"]["name"], "weather");
        assert_eq!(body["reasoning_effort"], "high");
    }
}
