//! `nexa build` runs each component's build command, as `spin build` does,
//! with progress output; a failing command stops with the component named.

use std::process::Command;

use crate::support::AppDir;

fn nexa_build(app: &AppDir) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nexa"))
        .arg("build")
        .arg("-f")
        .arg(app.path("spin.toml"))
        .output()
        .unwrap()
}

#[test]
fn build_runs_each_command_in_its_workdir_with_progress() {
    let app = AppDir::new(
        r#"spin_manifest_version = 2
[application]
name = "t"
[component.first]
source = "first.wasm"
[component.first.build]
command = "echo one > built-first.txt"
[component.second]
source = "second.wasm"
[component.second.build]
command = ["mkdir -p sub", "echo two > built-second.txt"]
workdir = "."
[component.unbuilt]
source = "unbuilt.wasm"
"#,
    );
    let output = nexa_build(&app);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(app.path("built-first.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(
        std::fs::read_to_string(app.path("built-second.txt")).unwrap(),
        "two\n"
    );
    assert!(
        stderr.contains("[1/2] Building component first"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[2/2] Building component second"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Finished building 2 component(s)"),
        "{stderr}"
    );
}

#[test]
fn a_failing_build_names_the_component() {
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[component.broken]\nsource = \"b.wasm\"\n[component.broken.build]\ncommand = \"exit 3\"\n",
    );
    let output = nexa_build(&app);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("component \"broken\""), "{stderr}");
    assert!(stderr.contains("exit 3"), "{stderr}");
}

#[tokio::test]
async fn up_with_build_builds_before_serving() {
    let app = AppDir::new(&format!(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"fallback\"\n[component.fallback]\nsource = \"copied.wasm\"\n[component.fallback.build]\ncommand = \"cp {} copied.wasm\"\n",
        crate::support::component("fallback").display()
    ));
    let host = app.start(&["--build"]);
    assert!(
        host.log().contains("Building component fallback"),
        "{}",
        host.log()
    );
    let response = host.client().get(host.url("/x")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
