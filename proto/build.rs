//! Generates the Rust types and gRPC stubs from the .proto files with protox (pure Rust: no
//! system `protoc`). Servers get default stubs (unwritten RPCs answer `Unimplemented`); clients are
//! generated without tonic's transport so they need no extra tonic features (tests bring their own
//! connection).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/tfplugin6.proto", "proto/goplugin/goplugin.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .generate_default_stubs(true)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
