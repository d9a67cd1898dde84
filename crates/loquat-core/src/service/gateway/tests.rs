//! How an assistant shapes an API conversation, and what a saved topic shows as the question.

use super::*;
use crate::llm::{Image, ToolCall};

fn context() -> PromptContext {
    PromptContext {
        now: "2026-11-22T08:30:05+08:00[Asia/Shanghai]".parse().expect("valid zoned time"),
        model: "gpt-4o".into(),
        username: "Ada".into(),
        language: "en".into(),
    }
}

fn texts(messages: &[ChatMessage]) -> Vec<(ChatRole, &str)> {
    messages.iter().map(|message| (message.role, message.content.as_str())).collect()
}

#[test]
fn an_assistant_adds_its_system_role_template_and_history_limit() {
    let config = AssistantConfig {
        system_role: "You are {{model}} for {{username}}.".into(),
        input_template: "Q: {{text}}".into(),
        history_limit: Some(1),
        ..AssistantConfig::default()
    };
    let messages = vec![
        ChatMessage::new(ChatRole::System, "Answer in French."),
        ChatMessage::new(ChatRole::User, "one"),
        ChatMessage::new(ChatRole::Assistant, "two"),
        ChatMessage::new(ChatRole::User, "three"),
    ];
    let shaped = shape_conversation(&config, &context(), messages);
    assert_eq!(
        texts(&shaped),
        [
            (ChatRole::System, "You are gpt-4o for Ada."),
            (ChatRole::System, "Answer in French."),
            (ChatRole::Assistant, "two"),
            (ChatRole::User, "Q: three"),
        ]
    );
}

#[test]
fn a_history_cut_keeps_tool_results_with_their_call() {
    let config = AssistantConfig { history_limit: Some(0), ..AssistantConfig::default() };
    let mut call = ChatMessage::new(ChatRole::Assistant, "");
    call.tool_calls = vec![ToolCall { id: "c1".into(), name: "weather".into(), arguments: "{}".into() }];
    let messages =
        vec![ChatMessage::new(ChatRole::User, "Weather?"), call, ChatMessage::tool_result("c1", "weather", "sunny")];
    let shaped = shape_conversation(&config, &context(), messages);
    assert_eq!(texts(&shaped), [(ChatRole::Assistant, ""), (ChatRole::Tool, "sunny")]);
}

#[test]
fn request_parameters_win_over_the_assistants() {
    let request = ModelParams { temperature: Some(0.1), ..ModelParams::default() };
    let assistant = ModelParams { temperature: Some(0.9), top_p: Some(0.5), ..ModelParams::default() };
    let merged = merged_params(&request, &assistant);
    assert_eq!((merged.temperature, merged.top_p, merged.max_tokens), (Some(0.1), Some(0.5), None));
}

#[test]
fn the_question_is_the_last_user_message() {
    let mut with_image = ChatMessage::new(ChatRole::User, "What is this?");
    with_image.images = vec![Image::Url("https://example.com/a.png".into())];
    let messages =
        vec![ChatMessage::new(ChatRole::User, "first"), with_image, ChatMessage::new(ChatRole::Assistant, "x")];
    assert_eq!(question_of(&messages), "What is this?\n\n[1 image(s)]");
    assert_eq!(question_of(&[ChatMessage::new(ChatRole::System, "only")]), "only");
}
