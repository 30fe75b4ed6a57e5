//! TEMPORARY SHIM (branch mcp only).
#![allow(dead_code)]
use crate::domain::access::Role;
use crate::domain::ids::{ClientId, Mrn};

#[derive(Debug, Clone)]
pub struct NewClient {
    pub app_id: String,
    pub app_name: String,
    pub role: Role,
    pub scopes: String,
    pub patient_mrn: Option<Mrn>,
    pub jwks: Option<String>,
    pub rate_limit: Option<i64>,
    pub client_id: Option<ClientId>,
}

#[derive(Debug, Clone)]
pub struct ClientSecret(String);
impl ClientSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct RegisteredClient {
    pub client_id: ClientId,
    pub client_secret: ClientSecret,
    pub app_id: String,
    pub app_name: String,
    pub role: Role,
    pub scopes: String,
    pub rate_limit: i64,
    pub patient_mrn: Option<Mrn>,
}
