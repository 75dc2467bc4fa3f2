//! The rules that span settings, checked once each setting has its value from the layer that
//! won: `--public-ip` against `--udp-addr`, the stun timeout within the connect timeout, and
//! `--token` against `--token-file`.

use std::path::Path;

use super::table::{Given, Place};
use super::{values, ConfigError, ConnectTimeout, Layered, StunTimeout, Token, DEFAULT_UPLOAD_REGION};

impl Layered {
    /// Applies the rules; `config` is the config file, for the messages. Afterwards `token`
    /// holds the checked token, from `--token` or read from `--token-file`.
    pub(super) fn check(&mut self, config: Option<&Path>) -> Result<(), ConfigError> {
        self.token.value = self.token(config)?;
        let udp_ip = self.udp_addr.value.ip();
        match self.public_ip.value {
            Some(p) if p.is_unspecified() => return Err(ConfigError::PublicIpUnspecified(p)),
            None if udp_ip.is_unspecified() => return Err(ConfigError::PublicIpRequired(udp_ip)),
            _ => {}
        }
        self.stun_timeout.value = stun_within_connect(&self.stun_timeout, &self.connect_timeout, config)?;
        self.webhook_secret.value = match self.webhook_secret.value.take() {
            Some(secret) => Some(secret.check(&self.webhook_secret.place.describe("webhook-secret", config))?),
            None if !self.webhooks.value.is_empty() => return Err(ConfigError::WebhookSecretRequired),
            None => None,
        };
        self.upload(config)?;
        Ok(())
    }

    /// The object storage settings: each of endpoint, region and credentials from its flag
    /// or `TAPEDECK_*` variable, else the standard AWS variable (`AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), else the config file;
    /// the region defaults to [`DEFAULT_UPLOAD_REGION`]. Credentials come in pairs.
    fn upload(&mut self, config: Option<&Path>) -> Result<(), ConfigError> {
        let aws = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let below_env = |place: Place| matches!(place, Place::Default | Place::File);
        if below_env(self.upload_endpoint.place) {
            if let Some(url) = aws("AWS_ENDPOINT_URL") {
                self.upload_endpoint.value = Some(values::parse_endpoint(&url).map_err(ConfigError::AwsEndpoint)?);
                self.upload_endpoint.place = Place::Environment;
            }
        }
        if below_env(self.upload_region.place) {
            if let Some(region) = aws("AWS_REGION") {
                self.upload_region.value = Some(region);
            }
        }
        if self.upload_region.value.is_none() {
            self.upload_region.value = Some(DEFAULT_UPLOAD_REGION.to_owned());
        }
        for (given, name) in [
            (&mut self.upload_access_key_id, "AWS_ACCESS_KEY_ID"),
            (&mut self.upload_secret_access_key, "AWS_SECRET_ACCESS_KEY"),
        ] {
            if below_env(given.place) {
                if let Some(v) = aws(name) {
                    given.value = Some(Token::raw(v));
                    given.place = Place::Environment;
                }
            }
        }
        let (id, secret) = (&self.upload_access_key_id, &self.upload_secret_access_key);
        let id_from = id.place.describe("upload-access-key-id", config);
        let secret_from = secret.place.describe("upload-secret-access-key", config);
        let id_value = match (id.value.clone(), secret.value.is_some()) {
            (Some(_), false) => return Err(ConfigError::UploadCredentialHalf(id_from, "a secret access key".into())),
            (None, true) => return Err(ConfigError::UploadCredentialHalf(secret_from, "an access key id".into())),
            (v, _) => v,
        };
        self.upload_access_key_id.value = id_value.map(|t| t.check(&id_from)).transpose()?;
        let secret_value = self.upload_secret_access_key.value.take();
        self.upload_secret_access_key.value = secret_value.map(|t| t.check(&secret_from)).transpose()?;
        Ok(())
    }

    /// The token from --token or --token-file, whichever layer gave it; both at once is an
    /// error, since it is unclear which one the operator meant to use.
    fn token(&self, config: Option<&Path>) -> Result<Option<Token>, ConfigError> {
        let (token, token_file) = (&self.token, &self.token_file);
        match (&token.value, &token_file.value) {
            (Some(_), Some(_)) => Err(ConfigError::TokenTwice(
                token.place.describe("token", config),
                token_file.place.describe("token-file", config),
            )),
            (Some(t), None) => Ok(Some(t.clone().check(&token.place.describe("token", config))?)),
            (None, Some(path)) => Ok(Some(Token::read(path)?)),
            (None, None) => Ok(None),
        }
    }
}

/// The stun timeout, checked against the connect timeout (a session is dropped at the
/// connect timeout whatever the stun timeout says). One given longer than the connect
/// timeout is an error; the default stun timeout is lowered to a connect timeout given
/// below it, so that setting only `--connect-timeout 3000` (valid before the stun timeout
/// existed) still starts.
fn stun_within_connect(
    stun: &Given<StunTimeout>,
    connect: &Given<ConnectTimeout>,
    config: Option<&Path>,
) -> Result<StunTimeout, ConfigError> {
    if stun.value.as_millis() <= connect.value.as_millis() {
        return Ok(stun.value);
    }
    if stun.place == Place::Default {
        // In range: connect < stun <= the stun maximum, and connect >= the connect minimum,
        // which is at least the stun minimum (checked at compile time below).
        const _: () = assert!(ConnectTimeout::MIN_MS >= StunTimeout::MIN_MS);
        return Ok(StunTimeout::new(connect.value.as_millis()).expect("a connect timeout below a stun timeout is one"));
    }
    Err(ConfigError::StunAfterConnect {
        stun: stun.place.describe("stun-timeout", config),
        stun_ms: stun.value.as_millis(),
        connect: match connect.place {
            Place::Default => "the default --connect-timeout".to_owned(),
            p => p.describe("connect-timeout", config),
        },
        connect_ms: connect.value.as_millis(),
    })
}
