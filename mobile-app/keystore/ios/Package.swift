// swift-tools-version:5.3
// The keystore plugin's Swift package. The tauri-plugin build helper (build.rs, on a macOS
// host building for iOS) copies Tauri's own package to ../.tauri/tauri-api, then builds this
// package with swift-rs and links the static library `tauri-plugin-yiqian-keystore` (the
// product name must equal the crate's package name) into the Rust library the app links.

import PackageDescription

let package = Package(
  name: "tauri-plugin-yiqian-keystore",
  platforms: [
    .iOS(.v13)
  ],
  products: [
    .library(
      name: "tauri-plugin-yiqian-keystore",
      type: .static,
      targets: ["tauri-plugin-yiqian-keystore"])
  ],
  dependencies: [
    .package(name: "Tauri", path: "../.tauri/tauri-api")
  ],
  targets: [
    .target(
      name: "tauri-plugin-yiqian-keystore",
      dependencies: [
        .byName(name: "Tauri")
      ],
      path: "Sources")
  ]
)
