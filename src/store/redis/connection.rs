//! The way to Redis: one server through a connection manager, or a Redis Cluster through the
//! cluster client, behind one type, so the store's calls do not care which.
//!
//! Both reconnect on their own: the manager after Redis restarts; the cluster client after a
//! node fails over or a slot moves (`MOVED`/`ASK` are followed, the slot map refreshed, and
//! a script a new node has not seen is loaded again).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use secrecy::ExposeSecret;

use crate::config::RedisSettings;

/// A reply may take this long before the call counts as failed. Enqueueing is one short
/// script; a Redis slower than this is better reported (503, and Dropbox retries) than waited on.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_MAX_DELAY_MS: u64 = 500;

/// Where the Redis is: made from the settings without connecting.
pub enum Endpoint {
    Single(redis::Client),
    Cluster {
        client: ClusterClient,
        /// Each node named in `REDIS_URL`, for the wake-up subscription: a message published on
        /// any node of a cluster reaches subscribers on every node.
        nodes: Vec<redis::Client>,
    },
}

impl Endpoint {
    pub fn new(settings: &RedisSettings) -> redis::RedisResult<Endpoint> {
        let urls = settings.urls.iter().map(|url| url.expose_secret());
        if !settings.cluster {
            let url = urls.into_iter().next().unwrap_or_default();
            return Ok(Endpoint::Single(redis::Client::open(url)?));
        }
        let nodes = urls.map(redis::Client::open).collect::<Result<Vec<_>, _>>()?;
        let client =
            ClusterClient::builder(nodes.iter().map(|node| node.get_connection_info().clone()))
                .connection_timeout(CONNECTION_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                // A failover takes the cluster a few seconds; the caller retries after that (the
                // worker) or answers 503 (a webhook, which Dropbox retries).
                .retries(3)
                .min_retry_wait(50)
                .max_retry_wait(RECONNECT_MAX_DELAY_MS)
                .build()?;
        Ok(Endpoint::Cluster { client, nodes })
    }

    pub async fn connect(&self) -> redis::RedisResult<Connection> {
        match self {
            Endpoint::Single(client) => {
                // redis-rs hands `factor` to backon as the growth multiplier: its default (100)
                // waits 100 s before a third attempt. A caller that needs an answer (a webhook
                // with Dropbox waiting, a health check) gets one quickly; the next call retries.
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_connection_timeout(CONNECTION_TIMEOUT)
                    .set_factor(2)
                    .set_max_delay(RECONNECT_MAX_DELAY_MS)
                    .set_number_of_retries(1);
                let manager = ConnectionManager::new_with_config(client.clone(), config).await?;
                Ok(Connection::Single(manager))
            }
            Endpoint::Cluster { client, .. } => {
                Ok(Connection::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// A connection of its own subscribed to nothing yet, for pub/sub (which cannot share the
    /// multiplexed connection). In a cluster, the `attempt`th node, so a subscription that
    /// failed moves on to the next one.
    pub async fn pubsub(&self, attempt: usize) -> redis::RedisResult<redis::aio::PubSub> {
        let client = match self {
            Endpoint::Single(client) => client,
            Endpoint::Cluster { nodes, .. } => &nodes[attempt % nodes.len()],
        };
        client.get_async_pubsub().await
    }

    /// A client for each server named in `REDIS_URL`, for what must be asked of each.
    pub fn nodes(&self) -> &[redis::Client] {
        match self {
            Endpoint::Single(client) => std::slice::from_ref(client),
            Endpoint::Cluster { nodes, .. } => nodes,
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Endpoint::Cluster { .. })
    }
}

/// A multiplexed connection, to one Redis or to a cluster; cheap to clone.
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Whether Redis answers: on a cluster, any one primary, since the others' slots serve on
    /// while one is down (a cluster-wide PING would fail with it).
    pub async fn ping(&mut self) -> redis::RedisResult<()> {
        let ping = redis::cmd("PING");
        match self {
            Connection::Single(connection) => {
                ping.query_async::<String>(connection).await.map(drop)
            }
            Connection::Cluster(connection) => {
                let random = SingleNodeRoutingInfo::RandomPrimary;
                connection.route_command(&ping, RoutingInfo::SingleNode(random)).await.map(drop)
            }
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => connection.req_packed_commands(cmd, offset, count),
            Connection::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}
