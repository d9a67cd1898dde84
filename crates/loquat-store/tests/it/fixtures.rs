//! Domain values for the conformance tests, with fixed times so that ordering is deliberate.

use loquat_core::domain::{
    Assistant, AssistantConfig, Message, MessageRole, MessageStatus, NewMessage, Protocol, ProviderSetting, Role,
    Theme, Topic, User,
};
use loquat_core::id::{AssistantId, MessageId, ProviderSettingId, TopicId, UserId};
use loquat_core::store::{AccountGrant, AssistantStore, MessageStore, NewAccount, TopicStore, UserStore};
use loquat_core::time::Timestamp;
use loquat_store::SqlStore;

pub const T0: i64 = 1_700_000_000_000;

pub fn at(offset: i64) -> Timestamp {
    Timestamp(T0 + offset)
}

/// A user without an account (no email), like the local user of an instance without accounts.
pub fn user(name: &str) -> User {
    User {
        id: UserId::new(),
        name: name.to_owned(),
        email: None,
        role: Role::User,
        disabled: false,
        locale: None,
        theme: Theme::System,
        created_at: at(0),
        last_active_at: None,
        named_role: None,
    }
}

/// A user with an account: an email (already lower-cased, as the store keeps it), created at
/// `at(created)`.
pub fn account(name: &str, email: &str, created: i64) -> User {
    User { email: Some(email.to_owned()), created_at: at(created), ..user(name) }
}

pub fn assistant(user: UserId, is_default: bool, title: &str, created: i64) -> Assistant {
    Assistant {
        id: AssistantId::new(),
        user_id: user,
        is_default,
        config: AssistantConfig { title: title.to_owned(), ..AssistantConfig::default() },
        created_at: at(created),
        updated_at: at(created),
    }
}

pub fn topic(user: UserId, assistant: AssistantId, title: &str, updated: i64) -> Topic {
    Topic {
        id: TopicId::new(),
        user_id: user,
        assistant_id: assistant,
        title: title.to_owned(),
        active_leaf_id: None,
        pinned: false,
        created_at: at(0),
        updated_at: at(updated),
    }
}

pub fn message(topic: &Topic, parent: Option<MessageId>, role: MessageRole, content: &str, created: i64) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        user_id: topic.user_id,
        topic_id: topic.id,
        parent_id: parent,
        role,
        content: content.to_owned(),
        status: MessageStatus::Complete,
        provider: None,
        model: None,
        generating_by: None,
        created_at: at(created),
    }
}

pub fn generating(topic: &Topic, parent: MessageId, created: i64) -> NewMessage {
    NewMessage {
        status: MessageStatus::Generating,
        provider: Some("openai".to_owned()),
        model: Some("gpt-4o".to_owned()),
        generating_by: Some("node-a".to_owned()),
        ..message(topic, Some(parent), MessageRole::Assistant, "", created)
    }
}

pub fn provider(user: UserId, name: &str, created: i64) -> ProviderSetting {
    ProviderSetting {
        id: ProviderSettingId::new(),
        user_id: user,
        name: name.to_owned(),
        protocol: Protocol::OpenAi,
        base_url: "https://api.example.com/v1".to_owned(),
        api_key_encrypted: Some("00ff:11ee:22dd".to_owned()),
        model_list: "gpt-4o,my-agent=My Agent<32000:fc>".to_owned(),
        api_version: String::new(),
        enabled: true,
        created_at: at(created),
        updated_at: at(created),
    }
}

/// An account to create with `grant`, with its default assistant and no SSO identity.
pub fn new_account<'a>(
    user: &'a User,
    password_hash: Option<&'a str>,
    grant: AccountGrant<'a>,
    default_assistant: &'a Assistant,
) -> NewAccount<'a> {
    NewAccount { user, password_hash, grant, default_assistant, identity: None }
}

/// Two users, each with a default assistant and a topic; `alice` owns what the tests change
/// and `bob` is the other user whose id must find nothing of hers.
pub struct World {
    pub alice: User,
    pub bob: User,
    pub assistant: Assistant,
    pub topic: Topic,
    pub bob_assistant: Assistant,
    pub bob_topic: Topic,
}

pub async fn world(store: &SqlStore) -> World {
    let alice = user("Alice");
    let bob = user("Bob");
    store.ensure_user(&alice).await.expect("alice");
    store.ensure_user(&bob).await.expect("bob");
    let assistant = assistant(alice.id, true, "", 0);
    let bob_assistant = self::assistant(bob.id, true, "", 0);
    store.insert_assistant(&assistant).await.expect("alice's assistant");
    store.insert_assistant(&bob_assistant).await.expect("bob's assistant");
    let topic = topic(alice.id, assistant.id, "", 0);
    let bob_topic = self::topic(bob.id, bob_assistant.id, "", 0);
    store.insert_topic(&topic).await.expect("alice's topic");
    store.insert_topic(&bob_topic).await.expect("bob's topic");
    World { alice, bob, assistant, topic, bob_assistant, bob_topic }
}

/// Inserts `new` and returns it as stored.
pub async fn insert(store: &SqlStore, new: &NewMessage) -> Message {
    store.insert_message(new).await.expect("the message is inserted");
    store.get_message(new.user_id, new.id).await.expect("the message loads").expect("the message exists")
}
