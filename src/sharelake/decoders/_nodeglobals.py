"""Node.js and browser globals that device-repository codecs use and bare V8 lacks: atob, btoa, TextEncoder/Decoder, Buffer.

Installed only where a name is free, writable and configurable, so a codec's own `function atob()` still wins.
"""

from __future__ import annotations

# Buffer is the subset codecs reach for: from/alloc/concat/isBuffer, toString(hex|base64|utf8|latin1|ascii)
# and the fixed-width read* methods. It is a Uint8Array, so indexing and length behave as in Node.
NODE_GLOBALS = r"""
(function (g) {
  'use strict';
  function define(name, value) {
    if (typeof g[name] === 'undefined') {
      Object.defineProperty(g, name, {value: value, writable: true, configurable: true});
    }
  }
  var ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  function toBase64(bytes) {
    var out = '', i;
    for (i = 0; i + 2 < bytes.length; i += 3) {
      var n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
    }
    if (bytes.length - i === 1) {
      out += ALPHABET[bytes[i] >> 2] + ALPHABET[(bytes[i] & 3) << 4] + '==';
    } else if (bytes.length - i === 2) {
      var m = (bytes[i] << 8) | bytes[i + 1];
      out += ALPHABET[m >> 10] + ALPHABET[(m >> 4) & 63] + ALPHABET[(m & 15) << 2] + '=';
    }
    return out;
  }
  function fromBase64(text, strict) {
    var clean = String(text).replace(/[\t\n\f\r ]/g, '').replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
    if (strict && (clean.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(clean))) {
      throw new Error('The string to be decoded is not correctly encoded.');
    }
    var out = [], bits = 0, acc = 0;
    for (var i = 0; i < clean.length; i++) {
      var v = ALPHABET.indexOf(clean[i]);
      if (v < 0) continue;
      acc = (acc << 6) | v;
      bits += 6;
      if (bits >= 8) { bits -= 8; out.push((acc >> bits) & 255); }
    }
    return out;
  }
  function utf8Encode(text) {
    var out = [];
    for (var i = 0; i < text.length; i++) {
      var c = text.codePointAt(i);
      if (c > 0xffff) i++;
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return out;
  }
  function utf8Decode(bytes) {
    var out = '', i = 0;
    while (i < bytes.length) {
      var b = bytes[i], need = b < 0x80 ? 0 : b >= 0xf0 && b < 0xf8 ? 3 : b >= 0xe0 ? 2 : b >= 0xc2 ? 1 : -1;
      var c = need === 0 ? b : need === 1 ? b & 31 : need === 2 ? b & 15 : b & 7, ok = need >= 0;
      for (var k = 1; ok && k <= need; k++) {
        ok = i + k < bytes.length && (bytes[i + k] & 0xc0) === 0x80;
        if (ok) c = (c << 6) | (bytes[i + k] & 63);
      }
      if (!ok) { out += '\ufffd'; i += 1; continue; }
      out += String.fromCodePoint(c);
      i += need + 1;
    }
    return out;
  }
  function latin1(bytes) {
    var out = '';
    for (var i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]);
    return out;
  }
  define('btoa', function btoa(text) {
    var s = String(text), bytes = [];
    for (var i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 255) throw new Error('Invalid character');
      bytes.push(s.charCodeAt(i));
    }
    return toBase64(bytes);
  });
  define('atob', function atob(text) { return latin1(fromBase64(text, true)); });
  function TextEncoder() {}
  TextEncoder.prototype.encoding = 'utf-8';
  TextEncoder.prototype.encode = function (text) {
    return new Uint8Array(utf8Encode(text === undefined ? '' : String(text)));
  };
  function TextDecoder(label) {
    var name = String(label === undefined ? 'utf-8' : label).toLowerCase();
    if (name !== 'utf-8' && name !== 'utf8') throw new RangeError('only utf-8 is supported here');
  }
  TextDecoder.prototype.encoding = 'utf-8';
  TextDecoder.prototype.decode = function (input) {
    if (input === undefined) return '';
    var bytes = input instanceof ArrayBuffer ? new Uint8Array(input)
      : ArrayBuffer.isView(input) ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : input;
    return utf8Decode(bytes);
  };
  define('TextEncoder', TextEncoder);
  define('TextDecoder', TextDecoder);

  function view(b) { return new DataView(b.buffer, b.byteOffset, b.byteLength); }
  class Buffer extends Uint8Array {
    static from(value, encoding) {
      if (typeof value === 'string') {
        var enc = String(encoding || 'utf8').toLowerCase(), bytes;
        if (enc === 'hex') {
          bytes = [];
          for (var i = 0; i + 1 < value.length; i += 2) {
            var v = parseInt(value.substr(i, 2), 16);
            if (isNaN(v)) break;
            bytes.push(v);
          }
        } else if (enc === 'base64' || enc === 'base64url') {
          bytes = fromBase64(value, false);
        } else if (enc === 'latin1' || enc === 'binary' || enc === 'ascii') {
          bytes = [];
          for (var j = 0; j < value.length; j++) bytes.push(value.charCodeAt(j) & 255);
        } else {
          bytes = utf8Encode(value);
        }
        return Buffer.from(bytes);
      }
      if (value instanceof ArrayBuffer) return new Buffer(value);
      var out = new Buffer(value.length);
      for (var k = 0; k < value.length; k++) out[k] = value[k] & 255;
      return out;
    }
    static alloc(size, fill) { var b = new Buffer(size); if (fill) b.fill(fill); return b; }
    static isBuffer(value) { return value instanceof Buffer; }
    static concat(list, total) {
      var size = total === undefined ? list.reduce(function (n, b) { return n + b.length; }, 0) : total;
      var out = new Buffer(size), at = 0;
      for (var i = 0; i < list.length && at < size; i++) {
        out.set(list[i].subarray(0, size - at), at);
        at += Math.min(list[i].length, size - at);
      }
      return out;
    }
    toString(encoding, start, end) {
      var part = this.subarray(start || 0, end === undefined ? this.length : end);
      var enc = String(encoding || 'utf8').toLowerCase();
      if (enc === 'hex') {
        var out = '';
        for (var i = 0; i < part.length; i++) out += (part[i] < 16 ? '0' : '') + part[i].toString(16);
        return out;
      }
      if (enc === 'base64') return toBase64(part);
      if (enc === 'latin1' || enc === 'binary') return latin1(part);
      if (enc === 'ascii') return latin1(part.map(function (b) { return b & 127; }));
      return utf8Decode(part);
    }
    slice(start, end) { return this.subarray(start, end); }
    toJSON() { return {type: 'Buffer', data: Array.prototype.slice.call(this)}; }
    equals(other) {
      if (this.length !== other.length) return false;
      for (var i = 0; i < this.length; i++) if (this[i] !== other[i]) return false;
      return true;
    }
    readUInt8(o) { return view(this).getUint8(o || 0); }
    readInt8(o) { return view(this).getInt8(o || 0); }
    readUInt16BE(o) { return view(this).getUint16(o || 0); }
    readUInt16LE(o) { return view(this).getUint16(o || 0, true); }
    readInt16BE(o) { return view(this).getInt16(o || 0); }
    readInt16LE(o) { return view(this).getInt16(o || 0, true); }
    readUInt32BE(o) { return view(this).getUint32(o || 0); }
    readUInt32LE(o) { return view(this).getUint32(o || 0, true); }
    readInt32BE(o) { return view(this).getInt32(o || 0); }
    readInt32LE(o) { return view(this).getInt32(o || 0, true); }
    readFloatBE(o) { return view(this).getFloat32(o || 0); }
    readFloatLE(o) { return view(this).getFloat32(o || 0, true); }
    readDoubleBE(o) { return view(this).getFloat64(o || 0); }
    readDoubleLE(o) { return view(this).getFloat64(o || 0, true); }
  }
  ['readUint8', 'readUint16BE', 'readUint16LE', 'readUint32BE', 'readUint32LE'].forEach(function (alias) {
    Buffer.prototype[alias] = Buffer.prototype['readUInt' + alias.slice(9)];
  });
  define('Buffer', Buffer);
})(globalThis);
"""
