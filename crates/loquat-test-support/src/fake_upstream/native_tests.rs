//! Wire tests of the Anthropic, Gemini and Ollama faces of the fake upstream.
