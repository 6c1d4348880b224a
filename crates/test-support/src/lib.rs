//! What Minipay's integration tests (order-svc's in-process stack) and end-to-end tests (the
//! `minipay` harness over the real binaries) share:
//!
//! - [`services`]: where PostgreSQL, Redis and RabbitMQ are, a check for each that fails
//!   naming the service and how to start it, and a fresh database per test;
//! - [`amqp`]: a guard that deletes a test's queues and exchanges, queue inspection, a
//!   listener for order events, a TCP proxy to play a broker outage;
//! - [`api`]: an HTTP client for order-svc's public API (status and JSON of every call);
//! - [`slow_client`]: a client that sends part of a request and stalls, and what the server
//!   did about it;
//! - [`sim`]: reading the simulator's record of an order's notifications once complete;
//! - [`wait`]: [`wait_until`], a condition polled until a deadline;
//! - [`logs`]: [`alarming_lines`], the WARN and ERROR lines of a service's output.
//!
//! Tests never skip: a missing service is a failure with the command that starts it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

pub mod amqp;
pub mod api;
pub mod certs;
pub mod logs;
pub mod services;
pub mod sim;
pub mod slow_client;
pub mod wait;

pub use self::amqp::{AmqpCleanup, OrderEvents, Proxy, QueueState, queue_state};
pub use self::api::{Answer, OrderApi};
pub use self::certs::{Pem, TestCa};
pub use self::logs::alarming_lines;
pub use self::services::{
    SIMULATOR_MODE, amqp_url, dead_addr, fresh_database, redis_url, require_rabbitmq,
    require_redis, unique_id,
};
pub use self::wait::{Check, wait_until};
