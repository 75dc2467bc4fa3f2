//! The rules that span settings, checked once each setting has its value from the layer that
//! won: `--public-ip` against `--udp-addr`, the stun timeout within the connect timeout, and
//! `--token` against `--token-file`.

use std::path::Path;

use super::table::{Given, Place};
use super::{ConfigError, ConnectTimeout, Layered, StunTimeout, Token};

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
