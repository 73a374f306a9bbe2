//! End-to-end tests of tasks-service over real HTTP against a real PostgreSQL (127.0.0.1:5432;
//! each test gets its own database). One module per behaviour.

mod cluster;
mod helpers;

mod client;
mod connections;
mod create;
mod identity;
mod isolation;
mod migrations;
mod operations;
mod outage;
mod paging;
mod pool;
mod property;
mod read;
mod rls;
mod routing;
mod socket;
mod tls;
mod update;
