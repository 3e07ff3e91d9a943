//! terraform-provider-flux: Terraform starts this binary; it serves the provider over go-plugin
//! (see `provider::plugin` for the launch checks, transport and flags `--debug` / `--tcp`).

fn main() -> std::process::ExitCode {
    provider::plugin::run(provider::server::FluxProvider::new)
}
