//! Generation options as the JavaScript API spells them (`maxTokens`,
//! `responseFormat`, ...), read from untrusted values into
//! [`GenerateOptions`]. Kept apart from the wasm edge so that the fuzzer
//! (fuzz/) reads them as the page does, from JSON.

use crate::constraint::ResponseFormat;
use crate::sampler::SamplerConfig;
use crate::session::GenerateOptions;
use crate::{Error, Result};
use serde::Deserialize;

/// Sampling and stopping options, camelCase; every field optional.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct JsGenerateOptions {
    pub max_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub penalty_last_n: Option<usize>,
    pub seed: Option<f64>,
    pub stop: Option<Vec<String>>,
    pub logit_bias: Option<Vec<(u32, f32)>>,
    pub response_format: Option<serde_json::Value>,
    pub render_control_tokens: Option<bool>,
}

impl JsGenerateOptions {
    pub const KEYS: [&'static str; 14] = [
        "maxTokens",
        "temperature",
        "topK",
        "topP",
        "minP",
        "repeatPenalty",
        "frequencyPenalty",
        "presencePenalty",
        "penaltyLastN",
        "seed",
        "stop",
        "logitBias",
        "responseFormat",
        "renderControlTokens",
    ];

    /// A misspelt key is an error, not a silent default.
    pub fn check_keys(keys: impl IntoIterator<Item = String>) -> Result<()> {
        for key in keys {
            if !Self::KEYS.contains(&key.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "unknown generate option `{key}` (known: {})",
                    Self::KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The options an object gives, as the page reads them: its keys
    /// checked, then its values.
    pub fn from_json(value: &serde_json::Value) -> Result<GenerateOptions> {
        if let Some(object) = value.as_object() {
            Self::check_keys(object.keys().cloned())?;
        }
        let options = if value.is_null() {
            Self::default()
        } else {
            Self::deserialize(value).map_err(|e| Error::InvalidArgument(format!("generate options: {e}")))?
        };
        options.into_options()
    }

    pub fn into_options(self) -> Result<GenerateOptions> {
        let d = SamplerConfig::default();
        let response_format = match &self.response_format {
            Some(f) if !f.is_null() => ResponseFormat::from_json(f)?,
            _ => None,
        };
        Ok(GenerateOptions {
            max_tokens: self.max_tokens.unwrap_or(GenerateOptions::default().max_tokens),
            sampler: SamplerConfig {
                temperature: self.temperature.unwrap_or(d.temperature),
                top_k: self.top_k.unwrap_or(d.top_k),
                top_p: self.top_p.unwrap_or(d.top_p),
                min_p: self.min_p.unwrap_or(d.min_p),
                repeat_penalty: self.repeat_penalty.unwrap_or(d.repeat_penalty),
                frequency_penalty: self.frequency_penalty.unwrap_or(d.frequency_penalty),
                presence_penalty: self.presence_penalty.unwrap_or(d.presence_penalty),
                penalty_last_n: self.penalty_last_n.unwrap_or(d.penalty_last_n),
                logit_bias: self.logit_bias.unwrap_or_default(),
                seed: self.seed.map_or(d.seed, |s| s as u64),
            },
            stop: self.stop.unwrap_or_default(),
            response_format,
            render_control_tokens: self.render_control_tokens.unwrap_or(false),
        })
    }
}
