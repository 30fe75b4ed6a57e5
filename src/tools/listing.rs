//! `tools/list`: every tool for a caller not known yet (in-band authentication may follow), and only the
//! tools the policy lets a known caller call (a bearer token on the HTTP request or the WebSocket upgrade,
//! the connection's token from `authenticate`, or stdio's configured identity).

use rmcp::RoleServer;
use rmcp::model::{CacheScope, ListToolsResult, ProtocolVersion, ResultType, Tool as ToolModel};
use rmcp::service::RequestContext;

use super::EhrServer;
use crate::auth::{Principal, Tool};

impl EhrServer {
    /// The tools this connection's caller may call; all of them when the caller is not known.
    pub(crate) async fn visible_tools(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> ListToolsResult {
        let caller = self
            .session()
            .resolve(
                &self.services().auth,
                self.session().bearer_of(context),
                None,
            )
            .await
            .ok();
        let tools = super::all_tools()
            .into_iter()
            .filter(|tool| caller.as_ref().is_none_or(|caller| may_call(caller, tool)))
            .collect();
        let supports_cache_hints = context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
        // The list depends on the caller: only the caller's client may cache it.
        let mut result = ListToolsResult::with_all_items(tools);
        result.result_type = Some(ResultType::COMPLETE);
        result.ttl_ms = supports_cache_hints.then_some(0);
        result.cache_scope = supports_cache_hints.then_some(CacheScope::Private);
        result
    }
}

fn may_call(caller: &Principal, tool: &ToolModel) -> bool {
    Tool::from_name(&tool.name).is_some_and(|tool| crate::auth::policy::may_call(caller, tool))
}
