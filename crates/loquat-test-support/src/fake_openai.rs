//! The fake OpenAI-compatible upstream tests and the benchmark have always used: a
//! [`FakeUpstream`] speaking OpenAI Chat Completions, started without naming the protocol.
//! Everything else (the controls, [`Reply`], [`RecordedRequest`]) is the general fake's.

use std::io;
use std::ops::Deref;

use loquat_core::domain::Protocol;

use crate::fake_upstream::FakeUpstream;
pub use crate::fake_upstream::{RecordedRequest, Reply};

/// A running fake OpenAI upstream (`base_url()` is `http://127.0.0.1:<port>/v1`); every
/// control of [`FakeUpstream`] is available through it. Stops when dropped.
pub struct FakeOpenAi(FakeUpstream);

impl FakeOpenAi {
    /// Starts the fake on a free port of 127.0.0.1. Panics if it cannot listen.
    pub async fn start() -> Self {
        Self(FakeUpstream::start(Protocol::OpenAi).await)
    }

    pub async fn try_start() -> io::Result<Self> {
        FakeUpstream::try_start(Protocol::OpenAi).await.map(Self)
    }

    /// The general fake behind this one.
    pub fn upstream(&self) -> &FakeUpstream {
        &self.0
    }
}

impl Deref for FakeOpenAi {
    type Target = FakeUpstream;

    fn deref(&self) -> &FakeUpstream {
        &self.0
    }
}
