//! The conformance tests of what Loquat sends and lists: each protocol's request shape (auth,
//! system prompt, token limits, API version), tool calls and results sent back, reasoning
//! settings with signed thinking sent back, images, model lists across pages, and Ollama's
//! downloads and model details. The fake refuses what the real services refuse (Anthropic's
//! unpaired tool results and thinking rules, Gemini's unknown fields and unmatched function
//! responses, OpenAI's orphan tool messages, Ollama's non-object arguments).

use futures_util::StreamExt;
use loquat_core::domain::{ModelParams, Protocol};
use loquat_core::llm::{
    ChatClient, ChatMessage, ChatRequest, ChatRole, Image, ProviderErrorKind, ReasoningConfig, ReasoningEffort,
    Thinking, ToolCall, ToolSpec,
};
use loquat_test_support::fake_upstream::{ANTHROPIC_THINKING_SIGNATURE, RecordedRequest, Reply};
use serde_json::{Value, json};

use super::{AZURE_DEPLOYMENT, KEY, Row, WAIT};
use crate::{client, reasoning_of};

pub(super) async fn lists_models_across_pages(wire: Protocol) {
    let row = Row::start(wire).await;
    // More than one page of Anthropic (20) and Gemini (50) by default.
    let models: Vec<String> = (0..60).map(|i| format!("model-{i:02}")).collect();
    row.fake.set_models(models.clone());
    let listed = tokio::time::timeout(WAIT, client().list_models(&row.endpoint())).await;
    let listed = match listed {
        Ok(Ok(listed)) => listed,
        other => panic!("{row}: listing failed: {other:?}"),
    };
    let expected: Vec<String> = match wire {
        Protocol::Ollama => models.iter().map(|model| format!("{model}:latest")).collect(),
        _ => models,
    };
    assert_eq!(listed, expected, "{row}");
    let request = row.last_request().await;
    assert_eq!(request.method, "GET", "{row}");
    let path = match wire {
        Protocol::OpenAi | Protocol::Anthropic => "/v1/models",
        Protocol::Gemini => "/v1beta/models",
        Protocol::Ollama => "/api/tags",
        Protocol::Azure => "/openai/models",
    };
    assert_eq!(request.path, path, "{row}");
    assert_auth(&row, &request);
}

/// The key went where the protocol wants it, and nowhere else.
fn assert_auth(row: &Row, request: &RecordedRequest) {
    let bearer = format!("Bearer {KEY}");
    let (header, value) = match row.wire {
        Protocol::OpenAi | Protocol::Ollama => ("authorization", bearer.as_str()),
        Protocol::Anthropic => ("x-api-key", KEY),
        Protocol::Gemini => ("x-goog-api-key", KEY),
        Protocol::Azure => ("api-key", KEY),
    };
    assert_eq!(request.header(header), Some(value), "{row}: the key in `{header}`");
    for other in ["authorization", "x-api-key", "x-goog-api-key", "api-key"].into_iter().filter(|name| *name != header)
    {
        assert_eq!(request.header(other), None, "{row}: no `{other}` header");
    }
    assert!(!request.query.contains(KEY), "{row}: the key is not in the URL: {}", request.query);
    if row.wire == Protocol::Anthropic {
        assert!(request.header("anthropic-version").is_some_and(|version| !version.is_empty()), "{row}");
    }
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

pub(super) async fn sends_the_protocols_request_shape(wire: Protocol) {
    let row = Row::start(wire).await;
    let mut tuned = row.request();
    tuned.params = ModelParams { temperature: Some(0.5), max_tokens: Some(256), ..ModelParams::default() };
    row.play_ok(Reply::text("ok")).await;
    let plain = row.last_request().await;
    let (events, error) = row.play(Reply::text("ok"), &tuned).await;
    assert!(error.is_none(), "{row}: {error:?} {events:?}");
    let sent = row.last_request().await;
    assert_eq!(sent.method, "POST", "{row}");
    assert_auth(&row, &sent);
    let body = &sent.body;
    match wire {
        Protocol::OpenAi | Protocol::Azure => {
            let path = if wire == Protocol::OpenAi {
                "/v1/chat/completions".to_owned()
            } else {
                format!("/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions")
            };
            assert_eq!(sent.path, path, "{row}");
            if wire == Protocol::Azure {
                assert!(sent.query_param("api-version").is_some_and(|version| !version.is_empty()), "{row}");
            } else {
                assert_eq!(body["model"], "gpt-4o-mini", "{row}");
            }
            assert_eq!(body["messages"][0], json!({ "role": "system", "content": "Be brief." }), "{row}");
            assert_eq!(body["messages"][1], json!({ "role": "user", "content": "Hi" }), "{row}");
            assert_eq!(body["stream"], true, "{row}");
            assert_eq!(body["max_tokens"], 256, "{row}");
            assert!(plain.body.get("max_tokens").is_none(), "{row}: no limit unless set");
            assert!((number(&body["temperature"]) - 0.5).abs() < 1e-6, "{row}: {body}");
        }
        Protocol::Anthropic => {
            assert_eq!(sent.path, "/v1/messages", "{row}");
            assert_eq!(body["model"], "claude-sonnet-4-5", "{row}");
            let system = &body["system"];
            let system_text = system.as_str().or(system[0]["text"].as_str());
            assert_eq!(system_text, Some("Be brief."), "{row}: the system prompt is top-level: {body}");
            let roles: Vec<&str> =
                body["messages"].as_array().into_iter().flatten().filter_map(|m| m["role"].as_str()).collect();
            assert_eq!(roles, ["user"], "{row}: no system message among the messages: {body}");
            let first = &body["messages"][0]["content"];
            assert_eq!(first.as_str().or(first[0]["text"].as_str()), Some("Hi"), "{row}: {body}");
            assert_eq!(body["stream"], true, "{row}");
            assert_eq!(body["max_tokens"], 256, "{row}");
            assert!(plain.body["max_tokens"].as_u64().is_some_and(|limit| limit > 0), "{row}: max_tokens is required");
            assert!((number(&body["temperature"]) - 0.5).abs() < 1e-6, "{row}: {body}");
        }
        Protocol::Gemini => {
            assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", "{row}");
            assert_eq!(sent.query_param("alt").as_deref(), Some("sse"), "{row}");
            let system = body.get("systemInstruction").or_else(|| body.get("system_instruction"));
            assert_eq!(system.map(|system| &system["parts"][0]["text"]), Some(&json!("Be brief.")), "{row}: {body}");
            assert_eq!(body["contents"][0]["role"], "user", "{row}: {body}");
            assert_eq!(body["contents"][0]["parts"][0]["text"], "Hi", "{row}: {body}");
            assert_eq!(body["contents"].as_array().map(Vec::len), Some(1), "{row}: the system prompt is apart");
            let config = body.get("generationConfig").or_else(|| body.get("generation_config")).unwrap_or(&Value::Null);
            assert_eq!(
                config.get("maxOutputTokens").or_else(|| config.get("max_output_tokens")),
                Some(&json!(256)),
                "{row}"
            );
            assert!((number(&config["temperature"]) - 0.5).abs() < 1e-6, "{row}: {body}");
            let plain_config = plain.body.get("generationConfig").unwrap_or(&Value::Null);
            assert!(plain_config.get("maxOutputTokens").is_none(), "{row}: no limit unless set: {}", plain.body);
        }
        Protocol::Ollama => {
            assert_eq!(sent.path, "/api/chat", "{row}");
            assert_eq!(body["model"], "llama3.2", "{row}");
            assert_eq!(body["messages"][0], json!({ "role": "system", "content": "Be brief." }), "{row}: {body}");
            assert_eq!(body["messages"][1]["role"], "user", "{row}: {body}");
            assert_ne!(body["stream"], false, "{row}: streamed");
            assert_eq!(body["options"]["num_predict"], 256, "{row}: {body}");
            assert!((number(&body["options"]["temperature"]) - 0.5).abs() < 1e-6, "{row}: {body}");
            assert!(plain.body["options"].get("num_predict").is_none(), "{row}: no limit unless set");
        }
    }
}

pub(super) async fn pulls_and_describes_models_where_the_protocol_can(wire: Protocol) {
    let row = Row::start(wire).await;
    let endpoint = row.endpoint();
    if wire != Protocol::Ollama {
        let refused = client().pull_model(&endpoint, "anything").await.err().map(|error| error.kind);
        assert_eq!(refused, Some(ProviderErrorKind::BadRequest), "{row}: only Ollama downloads models");
        let details = client().model_details(&endpoint, row.model()).await;
        assert!(details.is_ok_and(|details| details.context_tokens.is_none()), "{row}: nothing to say");
        return;
    }
    row.fake.set_context_length("llama3.2", 8192);
    let details = client().model_details(&endpoint, "llama3.2").await;
    assert_eq!(details.map(|details| details.context_tokens).ok(), Some(Some(8192)), "{row}");
    let unknown = client().model_details(&endpoint, "no-such-model").await;
    assert_eq!(unknown.err().map(|error| error.kind), Some(ProviderErrorKind::ModelNotFound), "{row}");

    row.fake.set_registry(["qwen3:8b"]);
    let pull = client().pull_model(&endpoint, "qwen3:8b").await.unwrap_or_else(|error| panic!("{row}: {error}"));
    let progress: Vec<_> = tokio::time::timeout(WAIT, pull.collect::<Vec<_>>()).await.expect("the pull ends");
    let progress: Vec<_> =
        progress.into_iter().map(|item| item.unwrap_or_else(|error| panic!("{row}: {error}"))).collect();
    assert_eq!(progress.first().map(|step| step.status.as_str()), Some("pulling manifest"), "{row}: {progress:?}");
    assert_eq!(progress.last().map(|step| step.status.as_str()), Some("success"), "{row}: {progress:?}");
    let downloaded = progress.iter().filter(|step| step.total.is_some() && step.completed == step.total).count();
    assert_eq!(downloaded, 2, "{row}: both layers complete: {progress:?}");
    let models = client().list_models(&endpoint).await.unwrap_or_default();
    assert!(models.contains(&"qwen3:8b".to_owned()), "{row}: the pulled model is listed: {models:?}");

    let missing = client().pull_model(&endpoint, "no-such-model").await;
    let failed = match missing {
        Err(error) => Some(error),
        Ok(pull) => pull.collect::<Vec<_>>().await.into_iter().find_map(Result::err),
    };
    assert!(failed.is_some(), "{row}: pulling an unknown model fails");
}

/// A conversation where a tool call is being answered: the call (after signed reasoning) and
/// its result, in plain text.
fn tool_round_trip(row: &Row) -> ChatRequest {
    let mut call = ChatMessage::new(ChatRole::Assistant, "");
    call.tool_calls = vec![ToolCall {
        id: "call_weather_1".into(),
        name: "get_weather".into(),
        arguments: r#"{"city":"Paris"}"#.into(),
    }];
    call.thinking = Some(Thinking {
        text: "The user wants the weather; the tool knows it.".into(),
        signature: Some(ANTHROPIC_THINKING_SIGNATURE.into()),
    });
    let mut request = row.request();
    request.messages = vec![
        ChatMessage::new(ChatRole::System, "Be brief."),
        ChatMessage::new(ChatRole::User, "Weather in Paris?"),
        call,
        ChatMessage::tool_result("call_weather_1", "get_weather", "18°C and sunny"),
    ];
    request.tools = vec![ToolSpec {
        name: "get_weather".into(),
        description: "Weather by city".into(),
        parameters: json!({ "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] }),
    }];
    request
}

/// Plays a short answer to `request` and returns what the fake received.
async fn sent(row: &Row, request: &ChatRequest, reply: Reply) -> RecordedRequest {
    let (events, error) = row.play(reply, request).await;
    assert!(error.is_none(), "{row}: the fake refused the request: {error:?} after {events:?}");
    row.last_request().await
}

/// Text content as a string or as text blocks/parts.
fn text_in(content: &Value) -> Option<&str> {
    content.as_str().or_else(|| content[0]["text"].as_str())
}

pub(super) async fn sends_tool_results_back_in_the_protocols_shape(wire: Protocol) {
    let row = Row::start(wire).await;
    let sent = sent(&row, &tool_round_trip(&row), Reply::text("It is 18°C and sunny.")).await;
    let body = &sent.body;
    match wire {
        Protocol::OpenAi | Protocol::Azure => {
            let call = &body["messages"][2];
            assert_eq!(call["role"], "assistant", "{row}: {body}");
            let expected = json!({ "id": "call_weather_1", "type": "function",
                                   "function": { "name": "get_weather", "arguments": r#"{"city":"Paris"}"# } });
            assert_eq!(call["tool_calls"][0], expected, "{row}: {body}");
            let result = json!({ "role": "tool", "tool_call_id": "call_weather_1", "content": "18°C and sunny" });
            assert_eq!(body["messages"][3], result, "{row}: {body}");
            assert_eq!(body["tools"][0]["function"]["name"], "get_weather", "{row}: {body}");
        }
        Protocol::Anthropic => {
            let roles: Vec<&str> =
                body["messages"].as_array().into_iter().flatten().filter_map(|m| m["role"].as_str()).collect();
            assert_eq!(roles, ["user", "assistant", "user"], "{row}: {body}");
            let blocks = body["messages"][1]["content"].as_array().cloned().unwrap_or_default();
            let call = blocks.iter().find(|block| block["type"] == "tool_use");
            let expected = json!({ "type": "tool_use", "id": "call_weather_1", "name": "get_weather",
                                   "input": { "city": "Paris" } });
            assert_eq!(call, Some(&expected), "{row}: {body}");
            let result = &body["messages"][2]["content"][0];
            assert_eq!(result["type"], "tool_result", "{row}: the result opens the user turn: {body}");
            assert_eq!(result["tool_use_id"], "call_weather_1", "{row}: {body}");
            assert_eq!(text_in(&result["content"]), Some("18°C and sunny"), "{row}: {body}");
            assert_eq!(body["tools"][0]["name"], "get_weather", "{row}: {body}");
            assert!(body["tools"][0]["input_schema"].is_object(), "{row}: {body}");
        }
        Protocol::Gemini => {
            let contents = body["contents"].as_array().cloned().unwrap_or_default();
            assert_eq!(contents.len(), 3, "{row}: user, model call, response: {body}");
            assert_eq!(contents[1]["role"], "model", "{row}: {body}");
            let call = contents[1]["parts"].as_array().into_iter().flatten().find_map(|part| part.get("functionCall"));
            let call = call.unwrap_or(&Value::Null);
            assert_eq!((&call["name"], &call["args"]), (&json!("get_weather"), &json!({ "city": "Paris" })), "{row}");
            let response =
                contents[2]["parts"].as_array().into_iter().flatten().find_map(|part| part.get("functionResponse"));
            let response = response.unwrap_or(&Value::Null);
            assert_eq!(response["name"], "get_weather", "{row}: {body}");
            assert!(response["response"].to_string().contains("18°C and sunny"), "{row}: {body}");
            let declarations =
                body["tools"][0].get("functionDeclarations").or_else(|| body["tools"][0].get("function_declarations"));
            assert_eq!(declarations.map(|found| &found[0]["name"]), Some(&json!("get_weather")), "{row}: {body}");
        }
        Protocol::Ollama => {
            let call = &body["messages"][2];
            assert_eq!(call["role"], "assistant", "{row}: {body}");
            let function = &call["tool_calls"][0]["function"];
            assert_eq!(
                (&function["name"], &function["arguments"]),
                (&json!("get_weather"), &json!({ "city": "Paris" }))
            );
            assert_eq!(body["messages"][3]["role"], "tool", "{row}: {body}");
            assert_eq!(body["messages"][3]["content"], "18°C and sunny", "{row}: {body}");
            assert_eq!(body["tools"][0]["function"]["name"], "get_weather", "{row}: {body}");
        }
    }
}

pub(super) async fn sends_reasoning_settings_and_signed_thinking_back(wire: Protocol) {
    let row = Row::start(wire).await;
    let mut request = tool_round_trip(&row);
    request.reasoning = Some(ReasoningConfig { effort: Some(ReasoningEffort::Medium), budget_tokens: None });
    // Anthropic fixes the temperature while thinking and wants room above the budget.
    request.params = ModelParams { temperature: Some(0.7), max_tokens: Some(2000), ..ModelParams::default() };
    let reply = Reply::text("Sunny.").reasoning("The tool says sunny.");
    let (events, error) = row.play(reply, &request).await;
    assert!(error.is_none(), "{row}: the fake refused the request: {error:?}");
    assert_eq!(reasoning_of(&events), "The tool says sunny.", "{row}");
    let sent = row.last_request().await;
    let body = &sent.body;
    match wire {
        Protocol::OpenAi | Protocol::Azure => assert_eq!(body["reasoning_effort"], "medium", "{row}: {body}"),
        Protocol::Anthropic => {
            assert_eq!(body["thinking"], json!({ "type": "enabled", "budget_tokens": 8192 }), "{row}: {body}");
            assert!(body["max_tokens"].as_u64().is_some_and(|max| max > 8192), "{row}: {body}");
            assert!(body.get("temperature").is_none_or(|t| t == 1), "{row}: {body}");
            let first = &body["messages"][1]["content"][0];
            assert_eq!(first["type"], "thinking", "{row}: the call's turn opens with its thinking: {body}");
            assert_eq!(first["signature"], ANTHROPIC_THINKING_SIGNATURE, "{row}: {body}");
        }
        Protocol::Gemini => {
            let config = &body["generationConfig"]["thinkingConfig"];
            assert_eq!(config["includeThoughts"], true, "{row}: thoughts are asked for: {body}");
            assert!(config["thinkingBudget"] == 8192 || config["thinkingLevel"].is_string(), "{row}: {body}");
        }
        Protocol::Ollama => assert!(body["think"] == true || body["think"] == "medium", "{row}: {body}"),
    }
}

pub(super) async fn sends_images_in_the_protocols_shape(wire: Protocol) {
    let row = Row::start(wire).await;
    let mut request = row.request();
    let mut question = ChatMessage::new(ChatRole::User, "What is this?");
    question.images = vec![Image::Inline { mime_type: "image/png".into(), data_base64: "iVBORw0KGgo=".into() }];
    request.messages = vec![ChatMessage::new(ChatRole::System, "Be brief."), question];
    let sent = sent(&row, &request, Reply::text("A tiny PNG.")).await;
    let body = &sent.body;
    let text = body.to_string();
    assert!(text.contains("What is this?") && text.contains("iVBORw0KGgo="), "{row}: {body}");
    match wire {
        Protocol::OpenAi | Protocol::Azure => {
            let parts = body["messages"][1]["content"].as_array().cloned().unwrap_or_default();
            let image = json!({ "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBORw0KGgo=" } });
            assert!(parts.contains(&image), "{row}: {body}");
        }
        Protocol::Anthropic => {
            let blocks = body["messages"][0]["content"].as_array().cloned().unwrap_or_default();
            let image = json!({ "type": "image",
                                "source": { "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo=" } });
            assert!(blocks.contains(&image), "{row}: {body}");
        }
        Protocol::Gemini => {
            let parts = body["contents"][0]["parts"].as_array().cloned().unwrap_or_default();
            let inline = parts.iter().find_map(|part| part.get("inlineData").or_else(|| part.get("inline_data")));
            let inline = inline.unwrap_or(&Value::Null);
            let mime = inline.get("mimeType").or_else(|| inline.get("mime_type"));
            assert_eq!((mime, &inline["data"]), (Some(&json!("image/png")), &json!("iVBORw0KGgo=")), "{row}: {body}");
        }
        Protocol::Ollama => {
            assert_eq!(body["messages"][1]["images"], json!(["iVBORw0KGgo="]), "{row}: {body}");
            assert_eq!(body["messages"][1]["content"], "What is this?", "{row}: {body}");
        }
    }
}
