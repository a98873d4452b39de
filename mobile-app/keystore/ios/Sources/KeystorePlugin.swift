// The doctor app's hardware-backed wrapping key on iOS (tauri-plugin-yiqian-keystore).
//
// A P-256 private key created in the Secure Enclave (it never leaves it), stored permanently
// under the application tag "cn.yiqian.keystore.yiqian-state-wrap", usable only while the
// device is unlocked and never migrated to another device (no backup, no restore elsewhere).
// wrap = ECIES to its public key (eciesEncryptionCofactorVariableIVX963SHA256AESGCM: ephemeral
// P-256 key, X9.63 KDF with SHA-256, AES-GCM); unwrap needs the private key, i.e. the Secure
// Enclave of this phone. On the simulator, which has no Secure Enclave, the key is an ordinary
// keychain key (development only).
//
// Rust calls `wrap`, `unwrap` and `deleteKey` (src/mobile.rs); bytes travel as standard base64
// in {"data": "..."}. wrap output: version 0x01 || the ECIES blob.

import Foundation
import Security
import Tauri

class DataArgs: Decodable {
  let data: String
}

enum KeystoreError: LocalizedError {
  case invalidBase64
  case badWrappedData(String)
  case noKey
  case security(String)

  var errorDescription: String? {
    switch self {
    case .invalidBase64:
      return "the data is not valid base64"
    case .badWrappedData(let why):
      return "wrapped data: \(why)"
    case .noKey:
      return "no wrapping key on this device (unbound, or the data comes from another device)"
    case .security(let why):
      return why
    }
  }

  static func from(_ error: Unmanaged<CFError>?, _ call: String) -> KeystoreError {
    guard let error = error?.takeRetainedValue() else {
      return .security("\(call) failed")
    }
    return .security("\(call): \((error as Error).localizedDescription)")
  }
}

class KeystorePlugin: Plugin {
  // The key's alias is "yiqian-state-wrap" (as on Android); its keychain tag is this.
  static let applicationTag = Data("cn.yiqian.keystore.yiqian-state-wrap".utf8)
  static let algorithm = SecKeyAlgorithm.eciesEncryptionCofactorVariableIVX963SHA256AESGCM
  static let version: UInt8 = 1

  // Commands run on Tauri's IPC queue; one at a time here, so two first calls cannot both
  // create the key.
  private let lock = NSLock()

  @objc public func wrap(_ invoke: Invoke) throws {
    try transform(invoke, "wrap") { plain in
      let privateKey = try self.findKey() ?? self.createKey()
      guard let publicKey = SecKeyCopyPublicKey(privateKey) else {
        throw KeystoreError.security("SecKeyCopyPublicKey returned nothing")
      }
      guard SecKeyIsAlgorithmSupported(publicKey, .encrypt, Self.algorithm) else {
        throw KeystoreError.security("ECIES P-256 / AES-GCM not supported by this key")
      }
      var error: Unmanaged<CFError>?
      guard
        let sealed = SecKeyCreateEncryptedData(publicKey, Self.algorithm, plain as CFData, &error)
          as Data?
      else {
        throw KeystoreError.from(error, "SecKeyCreateEncryptedData")
      }
      var out = Data([Self.version])
      out.append(sealed)
      return out
    }
  }

  @objc public func unwrap(_ invoke: Invoke) throws {
    try transform(invoke, "unwrap") { wrapped in
      guard wrapped.count > 1 else { throw KeystoreError.badWrappedData("too short") }
      guard wrapped.first == Self.version else {
        throw KeystoreError.badWrappedData("unknown version \(wrapped.first ?? 0)")
      }
      guard let privateKey = try self.findKey() else { throw KeystoreError.noKey }
      var error: Unmanaged<CFError>?
      guard
        let plain = SecKeyCreateDecryptedData(
          privateKey, Self.algorithm, Data(wrapped.dropFirst()) as CFData, &error) as Data?
      else {
        throw KeystoreError.from(error, "SecKeyCreateDecryptedData")
      }
      return plain
    }
  }

  // wrap and unwrap: base64 in, `body` under the lock, base64 out (or the reason it failed).
  private func transform(_ invoke: Invoke, _ name: String, _ body: (Data) throws -> Data) throws {
    let args = try invoke.parseArgs(DataArgs.self)
    lock.lock()
    defer { lock.unlock() }
    do {
      guard let input = Data(base64Encoded: args.data) else { throw KeystoreError.invalidBase64 }
      invoke.resolve(["data": try body(input).base64EncodedString()])
    } catch {
      invoke.reject("\(name) failed: \(error.localizedDescription)")
    }
  }

  @objc public func deleteKey(_ invoke: Invoke) throws {
    lock.lock()
    defer { lock.unlock() }
    let query: [String: Any] = [
      kSecClass as String: kSecClassKey,
      kSecAttrApplicationTag as String: Self.applicationTag,
      kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
    ]
    let status = SecItemDelete(query as CFDictionary)
    guard status == errSecSuccess || status == errSecItemNotFound else {
      invoke.reject("deleteKey failed: SecItemDelete status \(status)")
      return
    }
    invoke.resolve()
  }

  private func findKey() throws -> SecKey? {
    let query: [String: Any] = [
      kSecClass as String: kSecClassKey,
      kSecAttrApplicationTag as String: Self.applicationTag,
      kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
      kSecAttrKeyClass as String: kSecAttrKeyClassPrivate,
      kSecReturnRef as String: true,
    ]
    var item: CFTypeRef?
    let status = SecItemCopyMatching(query as CFDictionary, &item)
    if status == errSecItemNotFound {
      return nil
    }
    guard status == errSecSuccess, let found = item else {
      throw KeystoreError.security("SecItemCopyMatching status \(status)")
    }
    return (found as! SecKey)
  }

  private func createKey() throws -> SecKey {
    #if targetEnvironment(simulator)
      // No Secure Enclave: an ordinary keychain key (development only).
      let flags: SecAccessControlCreateFlags = []
    #else
      let flags: SecAccessControlCreateFlags = .privateKeyUsage
    #endif
    var error: Unmanaged<CFError>?
    guard
      let access = SecAccessControlCreateWithFlags(
        kCFAllocatorDefault, kSecAttrAccessibleWhenUnlockedThisDeviceOnly, flags, &error)
    else {
      throw KeystoreError.from(error, "SecAccessControlCreateWithFlags")
    }
    var attributes: [String: Any] = [
      kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
      kSecAttrKeySizeInBits as String: 256,
      kSecPrivateKeyAttrs as String: [
        kSecAttrIsPermanent as String: true,
        kSecAttrApplicationTag as String: Self.applicationTag,
        kSecAttrAccessControl as String: access,
      ] as [String: Any],
    ]
    #if !targetEnvironment(simulator)
      attributes[kSecAttrTokenID as String] = kSecAttrTokenIDSecureEnclave
    #endif
    guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
      throw KeystoreError.from(error, "SecKeyCreateRandomKey")
    }
    return key
  }
}

@_cdecl("init_plugin_yiqian_keystore")
public func initPlugin() -> Plugin {
  return KeystorePlugin()
}
