//! Gemini request mapping tests: system instruction, role merging, tool calls and results,
//! images, generation config only when set, thinking, tools and tool config modes.

use loquat_core::domain::ModelParams;
use loquat_core::llm::{
    ChatMessage, ChatRequest, ChatRole, Image, ReasoningConfig, ReasoningEffort, Thinking, ToolCall, ToolChoice,
    ToolSpec,
};
use serde_json::{Value, json};

use super::request::wire_request;

fn body(request: &ChatRequest) -> Value {
    serde_json::to_value(wire_request(request)).expect("json")
}

fn request(messages: Vec<ChatMessage>) -> ChatRequest {
    ChatRequest { model: "gemini-2.5-flash".into(), messages, ..ChatRequest::default() }
}

#[test]
fn system_messages_become_the_instruction_and_same_role_turns_merge() {
    let request = request(vec![
        ChatMessage::new(ChatRole::System, "Be brief."),
        ChatMessage::new(ChatRole::User, "Hi"),
        ChatMessage::new(ChatRole::User, "Are you there?"),
        ChatMessage::new(ChatRole::Assistant, "Yes."),
        ChatMessage::new(ChatRole::Assistant, ""),
        ChatMessage::new(ChatRole::System, "Answer in French."),
        ChatMessage::new(ChatRole::User, "Why?"),
    ]);
    let expected = json!({
        "contents": [
            { "role": "user", "parts": [{ "text": "Hi" }, { "text": "Are you there?" }] },
            { "role": "model", "parts": [{ "text": "Yes." }] },
            { "role": "user", "parts": [{ "text": "Why?" }] },
        ],
        "systemInstruction": { "parts": [{ "text": "Be brief." }, { "text": "Answer in French." }] },
    });
    assert_eq!(body(&request), expected, "no generationConfig, tools or toolConfig when unset");
}

#[test]
fn generation_config_has_only_the_set_parameters_and_thinking() {
    let mut request = request(vec![ChatMessage::new(ChatRole::User, "Hi")]);
    request.params = ModelParams { temperature: Some(0.7), max_tokens: Some(512), ..ModelParams::default() };
    // The wire text, as reqwest sends it: f32 values are written as typed (not widened).
    let text = serde_json::to_string(&wire_request(&request)).expect("json");
    assert!(text.contains(r#""generationConfig":{"temperature":0.7,"maxOutputTokens":512}"#), "{text}");

    request.params = ModelParams {
        top_p: Some(0.9),
        presence_penalty: Some(0.5),
        frequency_penalty: Some(-0.5),
        ..ModelParams::default()
    };
    request.reasoning = Some(ReasoningConfig { effort: Some(ReasoningEffort::Low), budget_tokens: None });
    let config = &body(&request)["generationConfig"];
    assert_eq!(config["topP"].as_f64().map(|value| (value * 100.0).round()), Some(90.0));
    assert!(config.get("temperature").is_none() && config.get("maxOutputTokens").is_none());
    assert!(config.get("presencePenalty").is_some() && config.get("frequencyPenalty").is_some());
    assert_eq!(config["thinkingConfig"], json!({ "thinkingBudget": 2048, "includeThoughts": true }));

    request.params = ModelParams::default();
    request.reasoning = Some(ReasoningConfig { effort: Some(ReasoningEffort::High), budget_tokens: Some(0) });
    assert_eq!(
        body(&request)["generationConfig"],
        json!({ "thinkingConfig": { "thinkingBudget": 0, "includeThoughts": false } })
    );
    request.reasoning = Some(ReasoningConfig::default());
    assert!(body(&request).get("generationConfig").is_none(), "no budget, no thinking config");
}

#[test]
fn tool_calls_and_results_with_names_and_signatures() {
    let mut call = ChatMessage::new(ChatRole::Assistant, "Let me check.");
    call.tool_calls = vec![
        ToolCall { id: "call_x_0".into(), name: "get_weather".into(), arguments: r#"{"city":"Paris"}"#.into() },
        ToolCall { id: "call_x_1".into(), name: "get_time".into(), arguments: String::new() },
    ];
    call.thinking = Some(Thinking { text: "thinking".into(), signature: Some("CiQB0e2Kb2s=".into()) });
    let mut unnamed = ChatMessage::tool_result("call_x_1", "", "12:00");
    unnamed.tool_name = None;
    let request = request(vec![
        ChatMessage::new(ChatRole::User, "Weather and time in Paris?"),
        call,
        ChatMessage::tool_result("call_x_0", "get_weather", r#"{"temp":21}"#),
        unnamed,
    ]);
    let contents = &body(&request)["contents"];
    assert_eq!(
        contents[1],
        json!({ "role": "model", "parts": [
            { "text": "Let me check." },
            { "functionCall": { "name": "get_weather", "args": { "city": "Paris" } }, "thoughtSignature": "CiQB0e2Kb2s=" },
            { "functionCall": { "name": "get_time", "args": {} } },
        ]})
    );
    assert_eq!(
        contents[2],
        json!({ "role": "user", "parts": [
            { "functionResponse": { "name": "get_weather", "response": { "content": { "temp": 21 } } } },
            { "functionResponse": { "name": "get_time", "response": { "content": "12:00" } } },
        ]})
    );
    assert_eq!(contents.as_array().map(Vec::len), Some(3));
}

#[test]
fn calls_without_a_signature_of_gemini_get_the_documented_placeholder() {
    let mut call = ChatMessage::new(ChatRole::Assistant, "");
    call.tool_calls = vec![ToolCall { id: "toolu_1".into(), name: "search".into(), arguments: "{}".into() }];
    let contents = &body(&request(vec![ChatMessage::new(ChatRole::User, "Find it"), call]))["contents"];
    assert_eq!(
        contents[1],
        json!({ "role": "model", "parts": [
            { "functionCall": { "name": "search", "args": {} }, "thoughtSignature": "skip_thought_signature_validator" },
        ]})
    );
}

#[test]
fn images_inline_data_urls_google_files_and_other_urls() {
    let mut question = ChatMessage::new(ChatRole::User, "What are these?");
    question.images = vec![
        Image::Inline { mime_type: "image/png".into(), data_base64: "iVBORw0=".into() },
        Image::Url("data:image/jpeg;base64,/9j/4AA=".into()),
        Image::Url("gs://bucket/cat.JPG".into()),
        Image::Url("https://generativelanguage.googleapis.com/v1beta/files/abc123".into()),
        Image::Url("https://example.com/dog.png".into()),
    ];
    let parts = &body(&request(vec![question]))["contents"][0]["parts"];
    assert_eq!(parts[0], json!({ "inlineData": { "mimeType": "image/png", "data": "iVBORw0=" } }));
    assert_eq!(parts[1], json!({ "inlineData": { "mimeType": "image/jpeg", "data": "/9j/4AA=" } }));
    assert_eq!(parts[2], json!({ "fileData": { "fileUri": "gs://bucket/cat.JPG", "mimeType": "image/jpeg" } }));
    assert_eq!(
        parts[3],
        json!({ "fileData": { "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123" } })
    );
    let note = parts[4]["text"].as_str().unwrap_or_default();
    assert!(note.contains("https://example.com/dog.png") && note.contains("not sent"), "{note}");
    assert_eq!(parts[5], json!({ "text": "What are these?" }), "the text after the images");
}

#[test]
fn tools_get_gemini_schemas_and_every_tool_choice_a_mode() {
    let weather = ToolSpec {
        name: "get_weather".into(),
        description: "Weather by city".into(),
        parameters: json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": { "type": "string", "description": "City name" },
                "unit": { "type": ["string", "null"], "enum": ["c", "f"] },
                "days": { "type": "array", "items": { "type": "integer", "exclusiveMinimum": 0 } },
                "mode": { "const": "fast" },
                "additionalProperties": { "type": "boolean" },
            },
            "required": ["city"],
        }),
    };
    let now = ToolSpec {
        name: "now".into(),
        description: String::new(),
        parameters: json!({ "type": "object", "properties": {} }),
    };
    let mut request = request(vec![ChatMessage::new(ChatRole::User, "Hi")]);
    request.tools = vec![weather, now];
    let sent = body(&request);
    assert_eq!(
        sent["tools"],
        json!([{ "functionDeclarations": [
            { "name": "get_weather", "description": "Weather by city", "parameters": {
                "type": "object",
                "properties": {
                    "city": { "type": "string", "description": "City name" },
                    "unit": { "type": "string", "nullable": true, "enum": ["c", "f"] },
                    "days": { "type": "array", "items": { "type": "integer" } },
                    "mode": { "enum": ["fast"] },
                    "additionalProperties": { "type": "boolean" },
                },
                "required": ["city"],
            }},
            { "name": "now" },
        ]}])
    );
    assert_eq!(sent["toolConfig"], json!({ "functionCallingConfig": { "mode": "AUTO" } }));
    let modes = [
        (ToolChoice::None, json!({ "mode": "NONE" })),
        (ToolChoice::Required, json!({ "mode": "ANY" })),
        (ToolChoice::Named("now".into()), json!({ "mode": "ANY", "allowedFunctionNames": ["now"] })),
    ];
    for (choice, expected) in modes {
        request.tool_choice = choice;
        assert_eq!(body(&request)["toolConfig"]["functionCallingConfig"], expected);
    }
    request.tools.clear();
    request.tool_choice = ToolChoice::Required;
    let sent = body(&request);
    assert!(sent.get("tools").is_none() && sent.get("toolConfig").is_none(), "no tools, no tool config");
}

#[test]
fn a_conversation_cut_to_start_with_the_model_gets_a_user_turn_first() {
    let request = request(vec![
        ChatMessage::new(ChatRole::System, "Be brief."),
        ChatMessage::new(ChatRole::Assistant, "Four."),
        ChatMessage::new(ChatRole::User, "And 3 + 3?"),
    ]);
    let contents = &body(&request)["contents"];
    assert_eq!(contents[0], json!({ "role": "user", "parts": [{ "text": "(continuing an earlier conversation)" }] }));
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(contents[2]["role"], "user");
}
