//! Integration tests: the real `nexa` binary serving real wasm components
//! (built for wasm32-wasip2 on first use) over real HTTP, on embedded SQLite
//! and on the Redis at 127.0.0.1:6379.

mod contract;
mod prometheus_server;
mod services;
mod support;

mod admin;
mod artifact_cache;
mod auth;
mod browser;
mod build;
mod capabilities;
mod cli_bench;
mod cli_check_config;
mod cli_db;
mod cli_doctor;
mod cli_graph;
mod cli_logs;
mod cli_slo;
mod cli_traces;
mod config_errors;
mod connections;
mod edge;
mod fuzz;
mod isolation;
mod items;
mod metrics;
mod observability;
mod operate;
mod outbound_http;
mod postgres;
mod probes;
mod rate_limit;
mod readme;
mod redis;
mod reliability;
mod sandbox;
mod scale_out;
mod swap;
mod traces;
mod twin;
mod users;
mod web;
