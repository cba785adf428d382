//! The admin API, on its own listener (loopback by default) and behind its
//! own token: operators list, load, bind (with canaries), roll back and
//! unload rail and biller plugins while the gateway serves payments, bind
//! billers (`admin_billers`), and manage merchant accounts and their keys
//! (`admin_accounts`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;

use super::AdminState;
use super::fields::{Fields, fail};
use crate::domain::billers::{Billers, wit};
use crate::domain::rail_owners;
use crate::domain::traders::{self, Traders};
use crate::operations::bills;
use crate::plugins::registry::{Compiled, Registry};
use crate::values::error::{ApiError, FieldError};
use crate::values::method::Method;
use crate::values::mode::Mode;
use crate::values::status::{BillType, TradeKind};

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/plugins", get(list_plugins).post(load_plugin))
        .route("/admin/plugins/{id}", delete(unload_plugin))
        .route("/admin/routes", get(list_routes).post(bind_route))
        .route("/admin/routes/rollback", post(rollback_route))
        .merge(super::admin_accounts::routes())
        .merge(super::admin_billers::routes())
        .merge(super::admin_trades::routes())
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

/// Every admin call carries `Authorization: Bearer <admin token>`.
async fn require_token(State(state): State<AdminState>, request: axum::extract::Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), state.token.as_bytes()) {
        return ApiError::AdminAuthenticationFailed.into_response();
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The loaded rail, biller and trader versions, as `GET /admin/plugins`
/// lists them.
#[derive(Serialize)]
struct Plugins {
    rails: Vec<PluginListing>,
    billers: Vec<BillerListing>,
    traders: Vec<TraderListing>,
}

/// A trader, and the trades it carries now (bound at start).
#[derive(Serialize)]
struct TraderListing {
    id: String,
    plugin: String,
    name: String,
    version: String,
    path: String,
    mode: Mode,
    trades: Vec<TradeKind>,
    bound: Vec<TradeKind>,
}

#[derive(Serialize)]
struct BillerListing {
    id: String,
    plugin: String,
    name: String,
    version: String,
    path: String,
    mode: Mode,
    bill_types: Vec<BillType>,
    in_use: bool,
}

#[derive(Serialize)]
struct PluginListing {
    id: String,
    plugin: String,
    name: String,
    version: String,
    path: String,
    methods: Vec<Method>,
    currencies: Vec<String>,
    in_use: bool,
    /// Whether its component imports a way to act on the world (outbound
    /// HTTP…); one that does not has its payments committed in one write.
    acts_outside: bool,
}

fn plugins(registry: &Registry, billers: &Billers, traders: &Traders) -> Plugins {
    let routes = registry.routes();
    let rails = registry
        .rails()
        .iter()
        .map(|rail| PluginListing {
            id: rail.id(),
            plugin: rail.plugin_name().to_string(),
            name: rail.name().to_string(),
            version: rail.info.version.clone(),
            path: rail.path.display().to_string(),
            methods: rail.methods().collect(),
            currencies: rail.info.currencies.clone(),
            in_use: routes.uses(rail),
            acts_outside: rail.acts_outside(),
        })
        .collect();
    let billers = billers
        .loaded()
        .iter()
        .map(|biller| BillerListing {
            id: biller.id(),
            plugin: biller.plugin_name().to_string(),
            name: biller.info.name.clone(),
            version: biller.info.version.clone(),
            path: biller.path.display().to_string(),
            mode: biller.mode(),
            bill_types: BillType::ALL.iter().copied().filter(|t| biller.sells(wit(*t))).collect(),
            in_use: billers.in_use(biller),
        })
        .collect();
    let traders = traders
        .loaded()
        .iter()
        .map(|trader| TraderListing {
            id: trader.id(),
            plugin: trader.plugin_name().to_string(),
            name: trader.info.name.clone(),
            version: trader.info.version.clone(),
            path: trader.path.display().to_string(),
            mode: trader.mode(),
            trades: TradeKind::ALL.iter().copied().filter(|k| trader.trades(traders::wit(*k))).collect(),
            bound: traders.bound_to(trader),
        })
        .collect();
    Plugins { rails, billers, traders }
}

/// The bindings, as `GET /admin/routes` lists them.
#[derive(Serialize)]
struct RouteListing {
    routes: Vec<BindingListing>,
    default: &'static str,
}

#[derive(Serialize)]
struct BindingListing {
    mode: Mode,
    method: Method,
    plugin: String,
    canary: Option<CanaryListing>,
}

/// A canary in a binding listing (rails' and billers').
#[derive(Serialize)]
pub(super) struct CanaryListing {
    pub plugin: String,
    pub percent: u8,
}

fn routes(registry: &Registry) -> RouteListing {
    let routes = registry
        .routes()
        .bindings()
        .map(|(mode, method, binding)| BindingListing {
            mode: *mode,
            method: *method,
            plugin: binding.primary.id(),
            canary: binding
                .canary
                .as_ref()
                .map(|(rail, percent)| CanaryListing { plugin: rail.id(), percent: *percent }),
        })
        .collect();
    RouteListing { routes, default: "test mode uses the simulator for methods not bound here" }
}

/// A rail or biller version just loaded.
#[derive(Serialize)]
struct Loaded {
    /// `rail` or `biller`.
    kind: &'static str,
    id: String,
    name: String,
    version: String,
}

async fn list_plugins(State(state): State<AdminState>) -> axum::Json<Plugins> {
    axum::Json(plugins(&state.app.ops.rails, &state.app.ops.billers, &state.app.ops.traders))
}

async fn list_routes(State(state): State<AdminState>) -> axum::Json<RouteListing> {
    axum::Json(routes(&state.app.ops.rails))
}

/// `POST /admin/plugins {"path": "/srv/plugins/rail-x.wasm"}`: compiles off
/// the request threads, checks the world (rail or biller), and adds the
/// version (unbound).
async fn load_plugin(State(state): State<AdminState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let fields = Fields::parse(&body, &["path"])?;
    let mut errors = fields.errors();
    let path = fields.string("path", 4_096, true, &mut errors);
    let Some(path) = path.filter(|_| errors.is_empty()) else { return Err(ApiError::Validation(errors)) };
    let registry = Arc::clone(&state.app.ops.rails);
    let compiled = tokio::task::spawn_blocking(move || registry.compile(std::path::Path::new(&path)))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("loading panicked: {e}")))?
        .map_err(ApiError::PluginRejected)?;
    let compiled = match compiled {
        Compiled::Rail(rail) => rail,
        Compiled::Biller(biller) => {
            let loaded = state.app.ops.billers.add(biller).map_err(ApiError::PluginRejected)?;
            let body = Loaded {
                kind: "biller",
                id: loaded.id(),
                name: loaded.info.name.clone(),
                version: loaded.info.version.clone(),
            };
            return Ok((StatusCode::CREATED, axum::Json(body)).into_response());
        }
    };
    let (rail, mode, plugin) = (compiled.name().to_string(), compiled.mode(), compiled.plugin_name().to_string());
    let now_ms = state.app.ops.clock.now_ms();
    let owned = state.app.ops.store.write(move |conn| rail_owners::claim(conn, &rail, mode, &plugin, now_ms)).await?;
    owned.map_err(ApiError::PluginRejected)?;
    let loaded = state.app.ops.rails.add(compiled).map_err(ApiError::PluginRejected)?;
    let body =
        Loaded { kind: "rail", id: loaded.id(), name: loaded.name().to_string(), version: loaded.info.version.clone() };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

async fn unload_plugin(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Plugins>, ApiError> {
    let ops = &state.app.ops;
    if let Some(biller) = ops.billers.loaded().into_iter().find(|b| b.id() == id) {
        // The last version of a plugin checks its purchases still processing.
        if !ops.billers.has_successor(&id) {
            let (plugin, mode) = (biller.plugin_name().to_string(), biller.mode());
            let processing = ops.store.read(move |conn| bills::processing_count(conn, &plugin, mode)).await?;
            if processing > 0 {
                return Err(ApiError::PluginRejected(format!(
                    "{id} is the last loaded version of {} and {processing} of its purchases are still processing; \
                     load a newer version first, or wait until they settle",
                    biller.plugin_name()
                )));
            }
        }
        ops.billers.unload(&id).map_err(ApiError::PluginRejected)?;
    } else {
        ops.rails.unload(&id).map_err(ApiError::PluginRejected)?;
    }
    Ok(axum::Json(plugins(&ops.rails, &ops.billers, &ops.traders)))
}

/// Reads `mode` and `method` (both required).
fn mode_and_method(fields: &Fields, errors: &mut Vec<FieldError>) -> (Option<Mode>, Option<Method>) {
    let mode = fields.string("mode", 8, true, errors).and_then(|m| {
        Mode::parse(&m).or_else(|| {
            fail(errors, "mode", "must be test or live");
            None
        })
    });
    let method = fields.string("method", 32, true, errors).and_then(|m| {
        Method::parse(&m).or_else(|| {
            fail(errors, "method", "must be card, mtn_momo, orange_money or wallet");
            None
        })
    });
    (mode, method)
}

/// Reads the optional `canary: {"plugin", "percent"}` of a binding.
pub(super) fn canary(fields: &Fields, errors: &mut Vec<FieldError>) -> Option<(String, u8)> {
    let canary = fields.get("/canary")?;
    match (canary["plugin"].as_str(), canary["percent"].as_u64().and_then(|p| u8::try_from(p).ok())) {
        (Some(plugin), Some(percent)) if percent <= 100 => Some((plugin.to_string(), percent)),
        _ => {
            fail(errors, "canary", "must be {\"plugin\": \"name or id\", \"percent\": 0..100}");
            None
        }
    }
}

/// `POST /admin/routes {"mode","method","plugin","canary":{"plugin","percent"}?}`:
/// swaps the binding atomically; calls in flight finish on the old rail.
async fn bind_route(
    State(state): State<AdminState>,
    body: axum::body::Bytes,
) -> Result<axum::Json<RouteListing>, ApiError> {
    let fields = Fields::parse(&body, &["mode", "method", "plugin", "canary"])?;
    let mut errors = fields.errors();
    let (mode, method) = mode_and_method(&fields, &mut errors);
    let plugin = fields.string("plugin", 256, true, &mut errors);
    let canary = canary(&fields, &mut errors);
    let (Some(mode), Some(method), Some(plugin), true) = (mode, method, plugin, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let canary = canary.as_ref().map(|(p, percent)| (p.as_str(), *percent));
    state.app.ops.rails.bind(mode, method, &plugin, canary).map_err(ApiError::PluginRejected)?;
    Ok(axum::Json(routes(&state.app.ops.rails)))
}

async fn rollback_route(
    State(state): State<AdminState>,
    body: axum::body::Bytes,
) -> Result<axum::Json<RouteListing>, ApiError> {
    let fields = Fields::parse(&body, &["mode", "method"])?;
    let mut errors = fields.errors();
    let (mode, method) = mode_and_method(&fields, &mut errors);
    let (Some(mode), Some(method), true) = (mode, method, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    state.app.ops.rails.rollback(mode, method).map_err(ApiError::PluginRejected)?;
    Ok(axum::Json(routes(&state.app.ops.rails)))
}
