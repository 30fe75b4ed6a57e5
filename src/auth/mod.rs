//! TEMPORARY SHIM (branch mcp only, replaced by the auth helper's module at merge): the signatures the
//! tools code against. Never landed.
#![allow(dead_code, unused_variables, clippy::unused_async)]

pub mod clients;
pub mod error;
pub mod policy;
pub mod scope;

pub use error::AuthError;

use crate::domain::access::Role;
use crate::domain::ids::{ClientId, Mrn};

#[derive(Debug, Clone)]
pub struct Principal {
    pub client_id: ClientId,
    pub app_id: String,
    pub app_name: String,
    pub role: Role,
    pub scopes: scope::ScopeSet,
    pub patient: Option<Mrn>,
    pub token_id: String,
    pub expires_at: i64,
}

pub struct IssuedToken {
    pub access_token: String,
}

#[derive(Clone)]
pub struct AuthService;

impl AuthService {
    pub async fn issue_for_client_secret(
        &self,
        client_id: &str,
        secret: &str,
        app_id: Option<&str>,
        scope: Option<&str>,
        source: &str,
    ) -> Result<IssuedToken, AuthError> {
        Err(AuthError::Internal("shim".into()))
    }
    pub async fn validate(&self, token: &str) -> Result<Principal, AuthError> {
        Err(AuthError::Internal("shim".into()))
    }
    pub fn check_rate_limit(&self, principal: &Principal) -> Result<(), AuthError> {
        Ok(())
    }
    pub async fn register_client(
        &self,
        client: clients::NewClient,
    ) -> Result<clients::RegisteredClient, AuthError> {
        Err(AuthError::Internal("shim".into()))
    }
    pub fn resource_url(&self) -> String {
        String::new()
    }
    pub fn issuer(&self) -> String {
        String::new()
    }
}
