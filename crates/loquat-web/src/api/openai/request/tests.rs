//! Chat Completions requests as SDKs send them, and the 400s (with `param`) for bad ones.

use super::*;

fn parse(body: Value) -> Result<ChatBody, ApiError> {
    parse_chat(body.to_string().as_bytes(), false, "en")
}

fn param_of(body: Value) -> Option<String> {
    match parse(body) {
        Ok(_) => None,
        Err(error) => {
            assert_eq!(error.status.as_u16(), 400);
            error.param.or(Some(String::new()))
        }
    }
}

#[test]
fn a_full_request_is_read() {
    let body = json!({
        "model": "openai/gpt-4o",
        "messages": [
            { "role": "developer", "content": "Be brief." },
            { "role": "user", "content": [
                { "type": "text", "text": "What is" },
                { "type": "text", "text": "this?" },
                { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBORw0=", "detail": "low" } },
                { "type": "image_url", "image_url": "https://example.com/cat.png" },
            ] },
            { "role": "assistant", "content": null, "tool_calls": [
                { "id": "call_1", "type": "function", "function": { "name": "look", "arguments": "{\"x\":1}" } },
            ] },
            { "role": "tool", "tool_call_id": "call_1", "content": [{ "type": "text", "text": "a cat" }] },
        ],
        "temperature": 0.2, "top_p": 0.9, "presence_penalty": 0.5, "frequency_penalty": -0.5,
        "max_tokens": 50, "max_completion_tokens": 60, "reasoning_effort": "high",
        "tools": [{ "type": "function", "function": { "name": "look", "description": "Looks." } }],
        "tool_choice": { "type": "function", "function": { "name": "look" } },
        "stream": true, "stream_options": { "include_usage": true },
        "seed": 7, "user": "someone", "metadata": { "ignored": true },
    });
    let parsed = parse(body).expect("valid");
    assert!(parsed.stream && parsed.include_usage);
    let request = parsed.request;
    assert_eq!(request.model, "openai/gpt-4o");
    let roles: Vec<ChatRole> = request.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [ChatRole::System, ChatRole::User, ChatRole::Assistant, ChatRole::Tool]);
    assert_eq!(request.messages[1].content, "What is\nthis?");
    assert_eq!(
        request.messages[1].images,
        [
            Image::Inline { mime_type: "image/png".into(), data_base64: "iVBORw0=".into() },
            Image::Url("https://example.com/cat.png".into()),
        ]
    );
    assert_eq!(request.messages[2].tool_calls[0].arguments, "{\"x\":1}");
    assert_eq!(request.messages[3].tool_name.as_deref(), Some("look"));
    assert_eq!(request.messages[3].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(request.params.max_tokens, Some(60), "max_completion_tokens wins");
    assert_eq!((request.params.temperature, request.params.frequency_penalty), (Some(0.2), Some(-0.5)));
    assert_eq!(request.reasoning_effort, Some(ReasoningEffort::High));
    assert_eq!(request.tools[0].parameters, json!({ "type": "object", "properties": {} }));
    assert_eq!(request.tool_choice, ToolChoice::Named("look".into()));
}

#[test]
fn bad_requests_name_their_param() {
    let user = json!([{ "role": "user", "content": "hi" }]);
    assert_eq!(param_of(json!({ "messages": user })).as_deref(), Some("model"));
    assert_eq!(param_of(json!({ "model": "m", "messages": [] })).as_deref(), Some("messages"));
    assert_eq!(param_of(json!({ "model": "m", "messages": "hi" })).as_deref(), Some("messages"));
    assert_eq!(
        param_of(json!({ "model": "m", "messages": [{ "role": "wizard", "content": "hi" }] })).as_deref(),
        Some("messages[0].role")
    );
    assert_eq!(
        param_of(json!({ "model": "m", "messages": [{ "role": "tool", "tool_call_id": "x", "content": "r" }] }))
            .as_deref(),
        Some("messages[0].tool_call_id")
    );
    let audio = json!([{ "role": "user", "content": [{ "type": "input_audio", "input_audio": {} }] }]);
    assert_eq!(param_of(json!({ "model": "m", "messages": audio })).as_deref(), Some("messages[0].content[0].type"));
    let bad_image =
        json!([{ "role": "user", "content": [{ "type": "image_url", "image_url": { "url": "file:///etc" } }] }]);
    assert_eq!(
        param_of(json!({ "model": "m", "messages": bad_image })).as_deref(),
        Some("messages[0].content[0].image_url.url")
    );
    assert_eq!(param_of(json!({ "model": "m", "messages": user, "temperature": 3 })).as_deref(), Some("temperature"));
    assert_eq!(param_of(json!({ "model": "m", "messages": user, "max_tokens": 0 })).as_deref(), Some("max_tokens"));
    assert_eq!(param_of(json!({ "model": "m", "messages": user, "n": 2 })).as_deref(), Some("n"));
    assert_eq!(
        param_of(json!({ "model": "m", "messages": user, "tools": [{ "type": "x" }] })).as_deref(),
        Some("tools[0]")
    );
    assert_eq!(
        param_of(json!({ "model": "m", "messages": user, "tool_choice": "sometimes" })).as_deref(),
        Some("tool_choice")
    );
    assert_eq!(
        param_of(json!({ "model": "m", "messages": user, "reasoning_effort": "extreme" })).as_deref(),
        Some("reasoning_effort")
    );
    assert!(parse_chat(b"{not json", false, "en").is_err_and(|error| error.param.is_none()));
    assert!(parse_chat(b"[1]", false, "en").is_err());
}
