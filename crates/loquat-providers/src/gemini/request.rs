//! Gemini `generateContent` request mapping: `contents` with consecutive same-role turns merged,
//! `systemInstruction`, inline and file images, function calls and responses (with thought
//! signatures), `generationConfig` fields only when set, thinking, tools and tool config.

use std::collections::HashMap;

use loquat_core::llm::{ChatMessage, ChatRequest, ChatRole, Image, ToolChoice, ToolSpec};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The signature Google documents for function calls Gemini did not produce itself (history
/// from another model, or one whose signature was not kept): Gemini 3 rejects a function call
/// step without any signature.
const FOREIGN_SIGNATURE: &str = "skip_thought_signature_validator";

/// The user turn put before a conversation that starts with the model's.
const LEADING_USER_TEXT: &str = "(continuing an earlier conversation)";

/// The fields of Gemini's `Schema` (an OpenAPI subset); others (`additionalProperties`,
/// `$schema`, `const`…) are refused with a 400, so tool schemas keep only these.
const SCHEMA_FIELDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireRequest {
    contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<Value>,
}

#[derive(Debug, Serialize)]
struct Content {
    role: &'static str,
    parts: Vec<Value>,
}

#[derive(Debug, Serialize)]
struct SystemInstruction {
    parts: Vec<Value>,
}

/// Typed (not `json!`) so that `f32` values are written as typed: `0.7`, not `0.699999988…`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    thinking_budget: u32,
    include_thoughts: bool,
}

pub(crate) fn wire_request(request: &ChatRequest) -> WireRequest {
    let (contents, system) = contents(&request.messages);
    let params = &request.params;
    let config = GenerationConfig {
        temperature: params.temperature,
        top_p: params.top_p,
        max_output_tokens: params.max_tokens,
        presence_penalty: params.presence_penalty,
        frequency_penalty: params.frequency_penalty,
        thinking_config: request
            .reasoning
            .and_then(|reasoning| reasoning.budget())
            .map(|budget| ThinkingConfig { thinking_budget: budget, include_thoughts: budget > 0 }),
    };
    let config_is_empty = config.temperature.is_none()
        && config.top_p.is_none()
        && config.max_output_tokens.is_none()
        && config.presence_penalty.is_none()
        && config.frequency_penalty.is_none()
        && config.thinking_config.is_none();
    let declarations: Vec<Value> = request.tools.iter().map(declaration).collect();
    let tool_config = (!declarations.is_empty()).then(|| tool_config(&request.tool_choice));
    WireRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(SystemInstruction { parts: system }),
        generation_config: (!config_is_empty).then_some(config),
        tools: if declarations.is_empty() { Vec::new() } else { vec![json!({ "functionDeclarations": declarations })] },
        tool_config,
    }
}

/// The conversation as Gemini turns, and the system instruction's parts. Every system message
/// (wherever it is) goes to the system instruction; tool results are `user` turns.
fn contents(messages: &[ChatMessage]) -> (Vec<Content>, Vec<Value>) {
    let mut turns: Vec<Content> = Vec::with_capacity(messages.len());
    let mut system = Vec::new();
    // Tool names by call id, for results that do not name their tool.
    let mut names: HashMap<&str, &str> = HashMap::new();
    for message in messages {
        let (role, parts) = match message.role {
            ChatRole::System => {
                if !message.content.trim().is_empty() {
                    system.push(json!({ "text": message.content }));
                }
                continue;
            }
            ChatRole::User => ("user", user_parts(message)),
            ChatRole::Assistant => {
                for call in &message.tool_calls {
                    names.insert(call.id.as_str(), call.name.as_str());
                }
                ("model", model_parts(message))
            }
            ChatRole::Tool => {
                let by_id = message.tool_call_id.as_deref().and_then(|id| names.get(id).copied());
                let name = message.tool_name.as_deref().filter(|name| !name.is_empty()).or(by_id).unwrap_or("tool");
                let response = json!({ "content": parsed(&message.content) });
                ("user", vec![json!({ "functionResponse": { "name": name, "response": response } })])
            }
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.parts.extend(parts),
            _ => turns.push(Content { role, parts }),
        }
    }
    // Gemini refuses a conversation that opens with the model (a history limit can cut it so).
    if turns.first().is_some_and(|first| first.role == "model") {
        turns.insert(0, Content { role: "user", parts: vec![json!({ "text": LEADING_USER_TEXT })] });
    }
    (turns, system)
}

/// Images first, then the text, as Google recommends for prompts with one image.
fn user_parts(message: &ChatMessage) -> Vec<Value> {
    let mut parts: Vec<Value> = message.images.iter().map(image_part).collect();
    if !message.content.is_empty() {
        parts.push(json!({ "text": message.content }));
    }
    parts
}

/// Gemini only reads images it is sent or that are stored with Google (Cloud Storage or the
/// File API); other URLs are replaced by a note so that the model knows an image was there.
fn image_part(image: &Image) -> Value {
    match image {
        Image::Inline { mime_type, data_base64 } => {
            json!({ "inlineData": { "mimeType": mime_type, "data": data_base64 } })
        }
        Image::Url(url) => {
            let url = url.trim();
            if let Some((mime_type, data)) = data_url(url) {
                return json!({ "inlineData": { "mimeType": mime_type, "data": data } });
            }
            if url.starts_with("gs://") || url.starts_with("https://generativelanguage.googleapis.com/") {
                let mut file = json!({ "fileUri": url });
                if let Some(mime_type) = mime_type_of(url) {
                    file["mimeType"] = json!(mime_type);
                }
                return json!({ "fileData": file });
            }
            json!({ "text": format!("[An image ({url}) was not sent: this provider only reads uploaded images.]") })
        }
    }
}

/// `data:<mime>;base64,<data>`.
fn data_url(url: &str) -> Option<(&str, &str)> {
    let (head, data) = url.strip_prefix("data:")?.split_once(',')?;
    let mime_type = head.strip_suffix(";base64")?;
    (!mime_type.is_empty()).then_some((mime_type, data))
}

fn mime_type_of(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    let extension = path.rsplit_once('.').map(|(_, extension)| extension)?;
    Some(match extension {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => return None,
    })
}

/// The text, then the calls; the turn's thought signature goes on its first call, as Gemini
/// sent it (earlier reasoning text itself is not sent back: the signature stands for it).
fn model_parts(message: &ChatMessage) -> Vec<Value> {
    let mut parts = Vec::with_capacity(1 + message.tool_calls.len());
    if !message.content.is_empty() {
        parts.push(json!({ "text": message.content }));
    }
    let signature = message.thinking.as_ref().and_then(|thinking| thinking.signature.as_deref());
    for (index, call) in message.tool_calls.iter().enumerate() {
        let args = match parsed(&call.arguments) {
            args @ Value::Object(_) => args,
            _ => json!({}),
        };
        let mut part = json!({ "functionCall": { "name": call.name, "args": args } });
        if index == 0 {
            part["thoughtSignature"] =
                json!(signature.filter(|signature| !signature.is_empty()).unwrap_or(FOREIGN_SIGNATURE));
        }
        parts.push(part);
    }
    parts
}

/// JSON text as its value; anything else as a string.
fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn declaration(tool: &ToolSpec) -> Value {
    let mut declaration = json!({ "name": tool.name });
    if !tool.description.is_empty() {
        declaration["description"] = json!(tool.description);
    }
    let parameters = schema(&tool.parameters);
    // Gemini refuses an OBJECT schema without properties: a tool without arguments has none.
    let has_properties = parameters.get("properties").and_then(Value::as_object).is_some_and(|map| !map.is_empty());
    if has_properties {
        declaration["parameters"] = parameters;
    }
    declaration
}

/// A JSON Schema reduced to Gemini's `Schema`: unknown keywords dropped, `"type": [T, "null"]`
/// as `T` + `nullable`, `const` as a one-value `enum`.
fn schema(value: &Value) -> Value {
    let Value::Object(object) = value else {
        return value.clone();
    };
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "properties" => {
                let Value::Object(properties) = value else { continue };
                let properties: Map<String, Value> =
                    properties.iter().map(|(name, property)| (name.clone(), schema(property))).collect();
                if !properties.is_empty() {
                    out.insert(key.clone(), Value::Object(properties));
                }
            }
            "items" => {
                out.insert(key.clone(), schema(value));
            }
            "anyOf" => {
                let variants = value.as_array().map(|variants| variants.iter().map(schema).collect());
                out.insert(key.clone(), Value::Array(variants.unwrap_or_default()));
            }
            "type" => match value {
                Value::Array(types) => {
                    let mut named = types.iter().filter_map(Value::as_str);
                    if let Some(first) = named.clone().find(|kind| *kind != "null") {
                        out.insert(key.clone(), json!(first));
                    }
                    if named.any(|kind| kind == "null") {
                        out.insert("nullable".to_owned(), json!(true));
                    }
                }
                other => {
                    out.insert(key.clone(), other.clone());
                }
            },
            "const" if !object.contains_key("enum") => {
                out.insert("enum".to_owned(), json!([value]));
            }
            known if SCHEMA_FIELDS.contains(&known) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

fn tool_config(choice: &ToolChoice) -> Value {
    let (mode, allowed) = match choice {
        ToolChoice::Auto => ("AUTO", None),
        ToolChoice::None => ("NONE", None),
        ToolChoice::Required => ("ANY", None),
        ToolChoice::Named(name) => ("ANY", Some(name)),
    };
    let mut config = json!({ "mode": mode });
    if let Some(name) = allowed {
        config["allowedFunctionNames"] = json!([name]);
    }
    json!({ "functionCallingConfig": config })
}
