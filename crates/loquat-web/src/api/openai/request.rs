//! Reading a Chat Completions request into core's `ApiChatRequest`: messages with string or
//! part content (text, `image_url` with http(s) or base64 data URLs), the five roles
//! (`developer` is a system message), tool calls and results, tools and tool choice, sampling
//! parameters, reasoning effort and streaming options. Unknown fields are ignored; a bad value
//! is a 400 naming its `param` the way OpenAI does (`messages[1].content[0].type`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use loquat_core::domain::ModelParams;
use loquat_core::llm::{ChatMessage, ChatRole, Image, ReasoningEffort, ToolCall, ToolChoice, ToolSpec};
use loquat_core::service::ApiChatRequest;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::error::ApiError;

/// A parsed request and how to answer it.
#[derive(Debug)]
pub struct ChatBody {
    pub request: ApiChatRequest,
    pub stream: bool,
    pub include_usage: bool,
}

/// The raw request body; a body over the limit (or one that fails to arrive) is refused in
/// OpenAI's shape.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(request, state).await {
            Ok(body) => Ok(Self(body)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::body_too_large()),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// The top-level fields of a JSON object body, taken one by one.
pub struct Fields(Map<String, Value>);

impl Fields {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => Ok(Self(fields)),
            Ok(_) => Err(ApiError::invalid("The request body must be a JSON object.")),
            Err(error) => Err(ApiError::invalid(format!("We could not parse the JSON body of your request: {error}."))),
        }
    }

    /// The field as `T`; absent and `null` are `None`.
    pub fn get<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>, ApiError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|error| ApiError::invalid_param(name, format!("Invalid value for '{name}': {error}."))),
        }
    }

    pub fn required<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, ApiError> {
        self.get(name)?.ok_or_else(|| ApiError::invalid_param(name, format!("Missing required parameter: '{name}'.")))
    }
}

pub fn parse_chat(body: &[u8], save: bool, language: &str) -> Result<ChatBody, ApiError> {
    let mut fields = Fields::parse(body)?;
    let model: String = fields.required("model")?;
    let messages = messages(fields.required("messages")?)?;
    if let Some(n) = fields.get::<u32>("n")?
        && n != 1
    {
        return Err(ApiError::invalid_param("n", "Loquat answers with one choice: 'n' must be 1."));
    }
    let max_tokens = match fields.get::<u32>("max_completion_tokens")? {
        Some(tokens) => Some(("max_completion_tokens", tokens)),
        None => fields.get::<u32>("max_tokens")?.map(|tokens| ("max_tokens", tokens)),
    };
    if let Some((name, 0)) = max_tokens {
        return Err(ApiError::invalid_param(name, format!("Invalid value for '{name}': it must be at least 1.")));
    }
    let params = ModelParams {
        temperature: in_range(&mut fields, "temperature", 0.0, 2.0)?,
        top_p: in_range(&mut fields, "top_p", 0.0, 1.0)?,
        presence_penalty: in_range(&mut fields, "presence_penalty", -2.0, 2.0)?,
        frequency_penalty: in_range(&mut fields, "frequency_penalty", -2.0, 2.0)?,
        max_tokens: max_tokens.map(|(_, tokens)| tokens),
    };
    let reasoning_effort = match fields.get::<String>("reasoning_effort")?.as_deref() {
        None => None,
        Some("low") => Some(ReasoningEffort::Low),
        Some("medium") => Some(ReasoningEffort::Medium),
        Some("high") => Some(ReasoningEffort::High),
        Some(other) => {
            let message =
                format!("Invalid value for 'reasoning_effort': '{other}' is not one of 'low', 'medium', 'high'.");
            return Err(ApiError::invalid_param("reasoning_effort", message));
        }
    };
    let tools = tools(fields.get("tools")?.unwrap_or_default())?;
    let tool_choice = tool_choice(fields.get("tool_choice")?)?;
    let stream = fields.get::<bool>("stream")?.unwrap_or(false);
    let options: Map<String, Value> = fields.get("stream_options")?.unwrap_or_default();
    let include_usage = options.get("include_usage").and_then(Value::as_bool).unwrap_or(false);
    // Loquat's own: `false` leaves out the calls an assistant's server tools make.
    let tool_steps = fields.get::<bool>("loquat_tool_steps")?.unwrap_or(true);
    let request = ApiChatRequest {
        model,
        messages,
        params,
        tools,
        tool_choice,
        reasoning_effort,
        save,
        language: language.to_owned(),
        tool_steps,
    };
    Ok(ChatBody { request, stream, include_usage })
}

fn in_range(fields: &mut Fields, name: &str, low: f32, high: f32) -> Result<Option<f32>, ApiError> {
    match fields.get::<f32>(name)? {
        Some(value) if !(low..=high).contains(&value) => {
            let message = format!("Invalid value for '{name}': {value} is not between {low} and {high}.");
            Err(ApiError::invalid_param(name, message))
        }
        value => Ok(value),
    }
}

fn messages(items: Vec<Value>) -> Result<Vec<ChatMessage>, ApiError> {
    if items.is_empty() {
        return Err(ApiError::invalid_param("messages", "'messages' must contain at least one message."));
    }
    let mut messages: Vec<ChatMessage> = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let path = format!("messages[{index}]");
        let Value::Object(mut fields) = item else {
            return Err(ApiError::invalid_param(
                path.clone(),
                format!("Invalid type for '{path}': expected an object."),
            ));
        };
        let content = fields.remove("content").unwrap_or(Value::Null);
        let role = fields.get("role").and_then(Value::as_str).unwrap_or_default();
        let message = match role {
            "system" | "developer" => ChatMessage::new(ChatRole::System, text_content(content, &path, true)?),
            "user" => {
                let (text, images) = user_content(content, &path)?;
                ChatMessage { images, ..ChatMessage::new(ChatRole::User, text) }
            }
            "assistant" => {
                let text = text_content(content, &path, false)?;
                let calls = fields.remove("tool_calls").unwrap_or(Value::Null);
                ChatMessage { tool_calls: tool_calls(calls, &path)?, ..ChatMessage::new(ChatRole::Assistant, text) }
            }
            "tool" => {
                let text = text_content(content, &path, true)?;
                let call_id = fields.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
                let name = messages
                    .iter()
                    .rev()
                    .flat_map(|earlier| earlier.tool_calls.iter())
                    .find(|call| call.id == call_id && !call_id.is_empty())
                    .map(|call| call.name.clone());
                let Some(name) = name else {
                    let message = "Invalid parameter: messages with role 'tool' must be a response to a preceding \
                                   message with 'tool_calls'.";
                    return Err(ApiError::invalid_param(format!("{path}.tool_call_id"), message));
                };
                ChatMessage::tool_result(call_id, name, text)
            }
            other => {
                let message = format!(
                    "Invalid value for '{path}.role': '{other}' is not one of 'system', 'developer', 'user', \
                     'assistant' or 'tool'."
                );
                return Err(ApiError::invalid_param(format!("{path}.role"), message));
            }
        };
        messages.push(message);
    }
    Ok(messages)
}

/// Text content: a string or text parts (joined by a line break). `required` refuses `null`.
fn text_content(content: Value, path: &str, required: bool) -> Result<String, ApiError> {
    match content {
        Value::String(text) => Ok(text),
        Value::Null if !required => Ok(String::new()),
        Value::Array(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (index, part) in parts.iter().enumerate() {
                match part_text(part) {
                    Some(text) => texts.push(text),
                    None => return Err(unsupported_part(path, index, "only text parts are accepted here")),
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(ApiError::invalid_param(
            format!("{path}.content"),
            format!("Invalid type for '{path}.content': expected a string or an array of content parts."),
        )),
    }
}

fn part_text(part: &Value) -> Option<String> {
    (part["type"] == "text").then(|| part["text"].as_str().map(str::to_owned)).flatten()
}

fn unsupported_part(path: &str, index: usize, why: &str) -> ApiError {
    let param = format!("{path}.content[{index}].type");
    ApiError::invalid_param(param.clone(), format!("Invalid value for '{param}': {why}."))
}

/// A user message's text and images.
fn user_content(content: Value, path: &str) -> Result<(String, Vec<Image>), ApiError> {
    let Value::Array(parts) = content else { return Ok((text_content(content, path, true)?, Vec::new())) };
    let (mut texts, mut images) = (Vec::new(), Vec::new());
    for (index, part) in parts.iter().enumerate() {
        if let Some(text) = part_text(part) {
            texts.push(text);
        } else if part["type"] == "image_url" {
            let url = part["image_url"]["url"].as_str().or(part["image_url"].as_str()).unwrap_or_default();
            images.push(image(url).ok_or_else(|| {
                let param = format!("{path}.content[{index}].image_url.url");
                let message = format!("Invalid value for '{param}': expected an http(s) URL or a base64 data URL.");
                ApiError::invalid_param(param, message)
            })?);
        } else {
            return Err(unsupported_part(path, index, "only 'text' and 'image_url' parts are supported"));
        }
    }
    Ok((texts.join("\n"), images))
}

/// `https://…` stays a URL; `data:image/png;base64,…` becomes the image's bytes.
fn image(url: &str) -> Option<Image> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest.split_once(',')?;
        let mime_type = header.strip_suffix(";base64")?;
        let valid = mime_type.starts_with("image/") && !data.is_empty();
        return valid.then(|| Image::Inline { mime_type: mime_type.to_owned(), data_base64: data.to_owned() });
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then(|| Image::Url(url.to_owned()))
}

fn tool_calls(calls: Value, path: &str) -> Result<Vec<ToolCall>, ApiError> {
    let calls = match calls {
        Value::Null => return Ok(Vec::new()),
        Value::Array(calls) => calls,
        _ => return Err(ApiError::invalid_param(format!("{path}.tool_calls"), "'tool_calls' must be an array.")),
    };
    let mut parsed = Vec::with_capacity(calls.len());
    for (index, call) in calls.iter().enumerate() {
        let call_path = format!("{path}.tool_calls[{index}]");
        let id = call["id"].as_str().filter(|id| !id.is_empty());
        let name = call["function"]["name"].as_str().filter(|name| !name.is_empty());
        let (Some(id), Some(name)) = (id, name) else {
            let message = format!("'{call_path}' needs an 'id' and a 'function.name'.");
            return Err(ApiError::invalid_param(call_path, message));
        };
        // JSON text, as OpenAI sends it; an object is accepted and written as text.
        let arguments = match &call["function"]["arguments"] {
            Value::String(text) => text.clone(),
            Value::Null => "{}".to_owned(),
            other => other.to_string(),
        };
        parsed.push(ToolCall { id: id.to_owned(), name: name.to_owned(), arguments });
    }
    Ok(parsed)
}

fn tools(tools: Vec<Value>) -> Result<Vec<ToolSpec>, ApiError> {
    let mut specs = Vec::with_capacity(tools.len());
    for (index, tool) in tools.iter().enumerate() {
        let function = &tool["function"];
        let name = function["name"].as_str().filter(|name| !name.is_empty());
        let (true, Some(name)) = (tool["type"] == "function", name) else {
            let param = format!("tools[{index}]");
            let message = format!("'{param}' must be {{\"type\": \"function\", \"function\": {{\"name\": …}}}}.");
            return Err(ApiError::invalid_param(param, message));
        };
        let parameters = match &function["parameters"] {
            Value::Null => json!({ "type": "object", "properties": {} }),
            parameters => parameters.clone(),
        };
        let description = function["description"].as_str().unwrap_or_default().to_owned();
        specs.push(ToolSpec { name: name.to_owned(), description, parameters });
    }
    Ok(specs)
}

fn tool_choice(choice: Option<Value>) -> Result<ToolChoice, ApiError> {
    let Some(choice) = choice else { return Ok(ToolChoice::Auto) };
    match (&choice, choice["function"]["name"].as_str()) {
        (Value::String(mode), _) if mode == "auto" => Ok(ToolChoice::Auto),
        (Value::String(mode), _) if mode == "none" => Ok(ToolChoice::None),
        (Value::String(mode), _) if mode == "required" => Ok(ToolChoice::Required),
        (Value::Object(_), Some(name)) if choice["type"] == "function" => Ok(ToolChoice::Named(name.to_owned())),
        _ => Err(ApiError::invalid_param(
            "tool_choice",
            "Invalid value for 'tool_choice': expected 'auto', 'none', 'required' or a named function.",
        )),
    }
}

#[cfg(test)]
mod tests;
