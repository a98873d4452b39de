//! Tauri plugin conventions (`links`, the `desktop` / `mobile` cfgs) and the native projects:
//! for Android targets the Gradle module in `android/` is handed to the app's build (it lists
//! it in the generated `tauri.settings.gradle`); for iOS targets, when built on macOS, the
//! Swift package in `ios/` is compiled and linked into the Rust library.

// No JavaScript-callable commands: only the Rust shell (mobile-tauri) uses this plugin, through
// `KeystoreExt::keystore()`, so the webview gets no command and no permission to reach it.
const COMMANDS: &[&str] = &[];

fn main() {
    tauri_plugin::Builder::new(COMMANDS)
        .android_path("android")
        .ios_path("ios")
        .build();
}
