// The keystore plugin's Android library. Tauri's build (the app's build script) lists this
// module in the app's generated tauri.settings.gradle as ':tauri-plugin-yiqian-keystore' and
// makes the app depend on it; ':tauri-android' is Tauri's own library, included the same way.
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "cn.yiqian.keystore"
    compileSdk = 34

    defaultConfig {
        minSdk = 24
        // Kept in the app's release build (R8): the plugin class is loaded by name over JNI.
        consumerProguardFiles("proguard-rules.pro")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_1_8
        targetCompatibility = JavaVersion.VERSION_1_8
    }
}

kotlin {
    compilerOptions {
        jvmTarget = JvmTarget.JVM_1_8
    }
}

dependencies {
    implementation(project(":tauri-android"))
}
