use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    ignition_api::run().await
}
