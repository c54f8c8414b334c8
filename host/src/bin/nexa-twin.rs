//! `nexa-twin`: the API's handlers served natively over the same data as
//! `nexa up` (see `nexa_host::twin`).

fn main() -> anyhow::Result<()> {
    nexa_host::cli::run_process(nexa_host::twin::run)
}
