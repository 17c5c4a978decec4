"""The `lib` object a robot gets from `require('./libs/helpers')`: its JavaScript, and a registry of functions.

A function is JavaScript, optionally backed by Python: the sandbox cannot call Python synchronously, so a
Python-backed function asks `ask(name, args)`, which answers from a table injected before the run, or records
the request and throws; the runtime answers it (`LibFunction.answer`) and runs the robot again (see
`runtime.py`). Built-ins register through `Library.register`, the door an extension would use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sharelake.decoders.cayenne_lpp import LppError, decode_microshare_list
from sharelake.domain.principal import Principal

MAX_WRITES = 100  # records one run may write
MAX_PENDING = 64  # requests one run may leave for Python to answer
MAX_WRITE_CHARS = 1024 * 1024  # one written record's data, as JSON
MAX_HTTP = 16  # HTTP requests one run may make (lib.get/post/put/delete)
MAX_BINDINGS_CHARS = 64 * 1024  # the `bindings` a run leaves for the next, as JSON
MAX_MAILS = 10  # mails one run may send (lib.sendEmail / sendMicroshareEmail), each to at most 10 addresses
MAX_MAIL_CHARS = 100 * 1024  # one mail's body
HTTP_METHODS = ("get", "post", "put", "delete")  # lib functions answered by one HTTP request


class LibError(Exception):
    """Raised by a Python answer: the message is thrown in JavaScript as an Error from the lib call."""


# principal the robot acts as, the call's arguments (from JSON) → a JSON-able answer
Answer = Callable[[Principal, list[Any]], Any]


@dataclass(frozen=True, slots=True)
class LibFunction:
    name: str  # lib.<name>
    js: str  # a function expression, evaluated inside the lib's closure (sees ask, needScope, …)
    answer: Answer | None = None  # the Python side of ask(name, args), if it has one


# The closure every lib function is written in. It holds its own references to the built-ins it needs, and
# keeps its state (answers, pending requests, buffered writes) where the script cannot reach it: the
# runtime reads that state through `__sl_robot_state`, a global the script can neither replace nor shadow.
_CORE = r"""
(function (g) {
  'use strict';
  var stringify = JSON.stringify, parse = JSON.parse, define = Object.defineProperty, freeze = Object.freeze;
  var create = Object.create, apply = Reflect.apply, isArray = Array.isArray, Str = String, Err = Error;
  var reTest = RegExp.prototype.test, reExec = RegExp.prototype.exec;
  var strReplace = String.prototype.replace, strUpper = String.prototype.toUpperCase;
  var wsAdd = WeakSet.prototype.add, wsHas = WeakSet.prototype.has, libErrors = new WeakSet();
  var log = g.console.log;
  var MAX_WRITES = %(max_writes)d, MAX_PENDING = %(max_pending)d, MAX_WRITE_CHARS = %(max_write_chars)d;
  var MAX_HTTP = %(max_http)d, httpCount = 0, MAX_BINDINGS_CHARS = %(max_bindings)d;
  var MAX_MAILS = %(max_mails)d, MAX_MAIL_CHARS = %(max_mail_chars)d, mails = '', mailCount = 0;
  var EMAIL = /^[^@\s,;<>"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;
  var REC_TYPE = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/, FRAME = /\n\s+at [^\n]*?<anonymous>:(\d+):(\d+)/;
  var setup = {text: '', auth: null, scopes: [], ids: [], now: 0}, answers = create(null);
  var pending = create(null), pendingCount = 0, pendingList = '', writes = '', writeCount = 0, returned;

  function test(re, s) { return apply(reTest, re, [s]); }
  function libError(message) { var e = new Err(message); apply(wsAdd, libErrors, [e]); return e; }
  function replayNeeded(op) {
    var e = libError('lib.' + op + ' is answered between runs: the robot runs again from the start ' +
                     '(this exception is how; let it through)');
    define(e, 'name', {value: 'ReplayNeeded'});
    return e;
  }
  // The answer to a Python-backed call, or record the question and throw (the run is then done again).
  function ask(op, args) {
    var key = stringify([op, args]);
    var answer = answers[key];
    if (answer !== undefined) {
      if (answer.e !== undefined) throw libError(answer.e);
      return parse(answer.v);
    }
    if (!(key in pending) && pendingCount < MAX_PENDING) {
      pending[key] = true;
      pendingCount++;
      pendingList += (pendingList ? ',' : '') + stringify(key);
    }
    throw replayNeeded(op);
  }
  function allows(resource, operation) {
    for (var i = 0; i < setup.scopes.length; i++) {
      var s = setup.scopes[i];
      if ((s[0] === resource || s[0] === 'ALL') && (s[1] === operation || s[1] === 'ALL')) return true;
    }
    return false;
  }
  function needScope(fn, resource, operation) {
    if (!allows(resource, operation)) {
      throw libError(fn + ": this robot's scopes (" + (setup.scopeText || 'none') + ') do not allow ' +
                     resource + ':' + operation + '; add it to the robot\'s data.scopes');
    }
  }
  function checkAuth(fn, auth) {
    if (auth !== setup.auth) throw libError(fn + ': pass the auth given to main(text, auth) as the first argument');
  }
  function checkRecType(fn, recType) {
    if (typeof recType !== 'string' || recType.length > 255 || !test(REC_TYPE, recType)) {
      throw libError(fn + ': recType ' + stringify(recType) + ' is not valid: dot-separated labels of ' +
                     'letters, digits, _ and - (e.g. io.acme.decoded)');
    }
  }
  function tagsOf(fn, tags) {
    if (tags === undefined || tags === null) return [];
    if (typeof tags === 'string') tags = [tags];
    if (!isArray(tags) || tags.length > 64) throw libError(fn + ': tags must be a list of at most 64 strings');
    var out = [];
    for (var i = 0; i < tags.length; i++) {
      var t = tags[i];
      if (typeof t !== 'string' || t.length < 1 || t.length > 255) {
        throw libError(fn + ': every tag must be a string of 1 to 255 characters');
      }
      out[out.length] = t;
    }
    return out;
  }
  function hexArg(fn, hex) {
    if (typeof hex !== 'string') throw libError(fn + ': give a hex string, e.g. "0167FFD7"');
    return apply(strUpper, apply(strReplace, hex, [/\s+/g, '']), []);
  }
  function jsonText(value) {  // a value whose string form is its JSON, as Microshare's lib returned strings
    if (value !== null && typeof value === 'object') {
      define(value, 'toString', {value: function () { return stringify(value); }});
    }
    return value;
  }
  function describe(e) {
    var text;
    try { text = Str(e); } catch (x) { text = 'an exception that cannot be printed'; }
    try {
      if (e !== null && typeof e === 'object' && !apply(wsHas, libErrors, [e]) && typeof e.stack === 'string') {
        var at = apply(reExec, FRAME, [e.stack]);
        if (at) text += ' (line ' + at[1] + ', column ' + at[2] + ')';
      }
    } catch (x) { /* a hostile stack getter: the message alone will do */ }
    return text;
  }
  // What the run leaves in the global `bindings` for the next run: a JSON object, or an error.
  function bindingsOut() {
    var value = g.bindings, text;
    if (value === null || typeof value !== 'object' || isArray(value)) {
      return {e: 'bindings must stay an object (what a run leaves in it is given to the next run)'};
    }
    try { text = stringify(value); } catch (e) { return {e: 'bindings cannot be saved as JSON: ' + Str(e)}; }
    if (text.length > MAX_BINDINGS_CHARS) {
      return {e: 'bindings are ' + text.length + ' characters of JSON; at most ' + MAX_BINDINGS_CHARS};
    }
    return {v: text};
  }
  function returnedJson() {  // what main returned, as JSON (null when nothing JSON can hold)
    try { var text = stringify(returned); return text === undefined ? 'null' : text; } catch (e) { return 'null'; }
  }
  function state(error) {
    var kept = error === null ? bindingsOut() : {v: null};
    if (kept.e !== undefined) { error = kept.e; kept.v = null; }
    return '{"pending":[' + pendingList + '],"writes":[' + writes + '],"mails":[' + mails + '],"hasMain":' +
           (typeof main === 'function') + ',"error":' + stringify(error) + ',"bindings":' + stringify(kept.v) +
           ',"returned":' + returnedJson() + '}';
  }

  var lib = {};
%(functions)s
  freeze(lib);

  function print() { apply(log, undefined, arguments); }
  define(g, 'print', {value: print, writable: true, configurable: true});
  define(g, 'require', {value: function (name) {
    if (name === './libs/helpers' || name === './libs/helpers.js') return lib;
    throw libError("Cannot find module '" + Str(name) + "': a robot can require only './libs/helpers'");
  }, writable: true, configurable: true});
  define(g, '__sl_robot_setup', {value: function (json) {
    setup = parse(json);
    var table = setup.answers;
    for (var key in table) answers[key] = table[key];
    define(g, 'bindings', {value: parse(setup.bindings || '{}'), writable: true, enumerable: true});
  }});
  define(g, '__sl_robot_main', {value: function () {
    var error = null;
    if (typeof main !== 'function') {
      error = 'the script defines no main(text, auth) function';
    } else {
      try { returned = main(setup.text, setup.auth); } catch (e) { error = describe(e); }
    }
    return state(error);
  }});
  define(g, '__sl_robot_state', {value: function () { return state(null); }});
})(globalThis);
"""

_BUILTINS_JS: dict[str, str] = {
    # DESIGN §4 lists print on lib; the global print() (and console.*) write to the same log.
    "print": r"""function () { apply(log, undefined, arguments); }""",
    "parseMsg": r"""function (text) {
    var msg;
    if (typeof text === 'string') {
      try { msg = parse(text); } catch (e) { return {err: 1, message: 'parseMsg: the text is not JSON: ' + Str(e)}; }
    } else {
      msg = text;
    }
    if (msg !== null && typeof msg === 'object' && isArray(msg.objs) && msg.objs.length &&
        msg.objs[0] !== null && typeof msg.objs[0] === 'object' && msg.recType === undefined) {
      msg.recType = msg.objs[0].recType;
    }
    return msg;
  }""",
    "readShareById": r"""function (auth, recType, id) {
    checkAuth('readShareById', auth);
    needScope('readShareById', 'SHARE', 'READ');
    checkRecType('readShareById', recType);
    if (typeof id !== 'string') throw libError('readShareById: id must be a record id (a string)');
    return ask('readShareById', [recType, id]);
  }""",
    "readShareByTags": r"""function (auth, recType, tags) {
    checkAuth('readShareByTags', auth);
    needScope('readShareByTags', 'SHARE', 'READ');
    checkRecType('readShareByTags', recType);
    return ask('readShareByTags', [recType, tagsOf('readShareByTags', tags)]);
  }""",
    "writeShare": r"""function (auth, recType, obj, tags) {
    checkAuth('writeShare', auth);
    needScope('writeShare', 'SHARE', 'WRITE');
    checkRecType('writeShare', recType);
    if (typeof obj === 'string') {
      try { obj = parse(obj); } catch (e) { throw libError('writeShare: obj is a string that is not JSON'); }
    }
    if (obj === null || typeof obj !== 'object' || isArray(obj)) {
      throw libError("writeShare: obj must be a JSON object (the record's data)");
    }
    var tagList = tagsOf('writeShare', tags);
    if (writeCount >= MAX_WRITES) throw libError('writeShare: one run may write at most ' + MAX_WRITES + ' records');
    var data;
    try { data = stringify(obj); } catch (e) { throw libError('writeShare: obj cannot be written as JSON: ' + Str(e)); }
    if (data.length > MAX_WRITE_CHARS) {
      throw libError('writeShare: the record is ' + data.length + ' characters of JSON; at most ' + MAX_WRITE_CHARS);
    }
    var id = setup.ids[writeCount];
    writes += (writeCount ? ',' : '') + stringify([recType, data, tagList]);
    writeCount++;
    return {meta: {totalPages: 0, currentPage: 1, perPage: 0, totalCount: 1, currentCount: 1, source: 'db'},
            objs: [{name: '', url: '/share/' + recType + '/' + id, _id: id, id: id, tags: tagsOf('', tagList),
                    tstamp: setup.now, recType: recType}]};
  }""",
    "get": r"""function (url, headers) { return http('get', 'GET', url, headers, null); }""",
    "post": r"""function (url, headers, body) { return http('post', 'POST', url, headers, body); }""",
    "put": r"""function (url, headers, body) { return http('put', 'PUT', url, headers, body); }""",
    "delete": r"""function (url, headers) { return http('delete', 'DELETE', url, headers, null); }""",
    "readShareByView": r"""function (auth, viewRecType, viewId, params) {
    checkAuth('readShareByView', auth);
    if (!allows('VIEW', 'QUERY') && !allows('SHARE', 'QUERY')) {
      throw libError("readShareByView: this robot's scopes (" + (setup.scopeText || 'none') + ') do not allow ' +
                     "running views; add SHARE:QUERY (or VIEW:QUERY) to the robot's data.scopes");
    }
    checkRecType('readShareByView', viewRecType);
    if (typeof viewId !== 'string') throw libError('readShareByView: viewId must be a view id (a string)');
    var vars = create(null);
    if (params !== undefined && params !== null) {
      if (typeof params !== 'object' || isArray(params)) {
        throw libError('readShareByView: params must be an object of the view\'s variables (and recType)');
      }
      for (var name in params) {
        var value = params[name];
        if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
          throw libError('readShareByView: params.' + name + ' must be a string or a number');
        }
        vars[name] = Str(value);
      }
    }
    return ask('readShareByView', [viewRecType, viewId, vars]);
  }""",
    "sendEmail": r"""function (from, to, subject, body) { return mail('lib.sendEmail', from, to, subject, body); }""",
    "sendMicroshareEmail": r"""function (to, subject, body) {
    return mail('lib.sendMicroshareEmail', null, to, subject, body);
  }""",
    "decodeCayenneLPP": r"""function (hex) {
    return jsonText(ask('decodeCayenneLPP', [hexArg('decodeCayenneLPP', hex)]));
  }""",
    # Hex and binary helpers, as Microshare's robot lib has them: hex output upper-case and padded to whole
    # bytes, binary output padded to whole bytes (Hex2Bin: 4 bits per hex digit), signed forms in two's
    # complement over the width given.
    "Hex2Dec": r"""function (hex) { return digits('Hex2Dec', hex, 16); }""",
    "Hex2SignedDec": r"""function (hex) {
    var n = digits('Hex2SignedDec', hex, 16), width = hex.length * 4;
    return n >= Math.pow(2, width - 1) ? n - Math.pow(2, width) : n;
  }""",
    "Hex2Bin": r"""function (hex) {
    digits('Hex2Bin', hex, 16);
    var out = '';
    for (var i = 0; i < hex.length; i++) out += pad(parseInt(hex[i], 16).toString(2), 4);
    return out;
  }""",
    "Bin2Dec": r"""function (bin) { return digits('Bin2Dec', bin, 2); }""",
    "Bin2SignedDec": r"""function (bin) {
    var n = digits('Bin2SignedDec', bin, 2);
    return bin[0] === '1' ? n - Math.pow(2, bin.length) : n;
  }""",
    "Bin2Hex": r"""function (bin) {
    digits('Bin2Hex', bin, 2);
    var padded = pad(bin, Math.ceil(bin.length / 4) * 4), out = '';
    for (var i = 0; i < padded.length; i += 4) out += parseInt(padded.slice(i, i + 4), 2).toString(16);
    out = out.replace(/^0+(?=.)/, '').toUpperCase();
    return out.length % 2 ? '0' + out : out;
  }""",
    "Dec2Hex": r"""function (n) {
    var hex = unsigned('Dec2Hex', n).toString(16).toUpperCase();
    return hex.length % 2 ? '0' + hex : hex;
  }""",
    "Dec2Bin": r"""function (n) {
    var bin = unsigned('Dec2Bin', n).toString(2);
    return pad(bin, Math.ceil(bin.length / 8) * 8);
  }""",
    "Dec2BinTwoCompl": r"""function (n) {
    whole('Dec2BinTwoCompl', n);
    if (n >= 0) return lib.Dec2Bin(n);
    var magnitude = lib.Dec2Bin(-n - 1), out = '';
    if (magnitude[0] === '1') magnitude = '00000000' + magnitude;  // room for the sign bit
    for (var i = 0; i < magnitude.length; i++) out += magnitude[i] === '1' ? '0' : '1';
    return out;
  }""",
    "Dec2HexTwoCompl": r"""function (n) {
    whole('Dec2HexTwoCompl', n);
    return n >= 0 ? lib.Dec2Hex(n) : lib.Bin2Hex(lib.Dec2BinTwoCompl(n));
  }""",
    "btoa": r"""function (text) {
    return base64(unescape(encodeURIComponent(Str(text))));
  }""",
    "atob": r"""function (b64) {
    return decodeURIComponent(escape(unbase64('atob', Str(b64))));
  }""",
}

# Plain helpers the built-ins above share (inside the closure, not on `lib`).
_HELPERS = r"""
  // lib.sendEmail / sendMicroshareEmail: checked here, buffered like writes, sent when the run ends well.
  function mail(fn, from, to, subject, body) {
    var list = typeof to === 'string' ? to.split(/[,;]/) : to, rcpt = [];
    if (!isArray(list)) throw libError(fn + ': to must be an e-mail address, a comma-separated list, or a list');
    for (var i = 0; i < list.length; i++) {
      var address = typeof list[i] === 'string' ? list[i].trim() : list[i];
      if (address === '') continue;
      if (typeof address !== 'string' || address.length > 254 || !test(EMAIL, address)) {
        throw libError(fn + ': ' + stringify(address) + ' is not an e-mail address');
      }
      rcpt[rcpt.length] = address;
    }
    if (!rcpt.length || rcpt.length > 10) throw libError(fn + ': give 1 to 10 recipients');
    if (from !== null && (typeof from !== 'string' || !test(EMAIL, from))) {
      throw libError(fn + ': from must be an e-mail address');
    }
    if (typeof subject !== 'string' || subject.length > 255 || /[\r\n]/.test(subject)) {
      throw libError(fn + ': subject must be one line of at most 255 characters');
    }
    if (typeof body !== 'string') {
      try { body = stringify(body); } catch (e) { throw libError(fn + ': body must be text'); }
      if (typeof body !== 'string') throw libError(fn + ': body must be text');
    }
    if (body.length > MAX_MAIL_CHARS) throw libError(fn + ': the body is over ' + MAX_MAIL_CHARS + ' characters');
    if (mailCount >= MAX_MAILS) throw libError(fn + ': one run may send at most ' + MAX_MAILS + ' mails');
    mails += (mailCount ? ',' : '') + stringify([from, rcpt, subject, body]);
    mailCount++;
    return {sent: rcpt.length};
  }
  // lib.get/post/put/delete: checked here, made by Python between runs (`services.robots`), answered
  // {status, headers, body (text)}; a refused or failed request throws an Error saying why.
  function http(op, method, url, headers, body) {
    var fn = 'lib.' + op;
    if (typeof url !== 'string' || !test(/^https?:\/\//i, url)) {
      throw libError(fn + ': url must be an http:// or https:// URL (a string)');
    }
    var sent = create(null);
    if (headers !== undefined && headers !== null) {
      if (typeof headers !== 'object' || isArray(headers)) throw libError(fn + ': headers must be an object of strings');
      for (var name in headers) {
        var value = headers[name];
        if (typeof value !== 'string' && typeof value !== 'number') {
          throw libError(fn + ': header ' + stringify(name) + ' must be a string');
        }
        sent[name] = Str(value);
      }
    }
    var text = null;
    if (body !== undefined && body !== null) {
      if (typeof body === 'string') {
        text = body;
      } else {
        try { text = stringify(body); } catch (e) { throw libError(fn + ': body cannot be sent as JSON: ' + Str(e)); }
        var typed = false;
        for (var h in sent) if (h.toLowerCase() === 'content-type') typed = true;
        if (!typed) sent['Content-Type'] = 'application/json';
      }
      if (text.length > MAX_WRITE_CHARS) throw libError(fn + ': the body is over ' + MAX_WRITE_CHARS + ' characters');
    }
    if (httpCount >= MAX_HTTP) throw libError(fn + ': one run may make at most ' + MAX_HTTP + ' HTTP requests');
    httpCount++;
    return ask(op, [method, url, sent, text]);
  }
  var B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  function pad(text, width) { while (text.length < width) text = '0' + text; return text; }
  function digits(fn, text, base) {
    var valid = base === 16 ? /^[0-9A-Fa-f]+$/ : /^[01]+$/;
    if (typeof text !== 'string' || !test(valid, text)) {
      throw libError(fn + ': ' + stringify(text) + ' is not a ' + (base === 16 ? 'hex' : 'binary') + ' string');
    }
    return parseInt(text, base);
  }
  function whole(fn, n) {
    if (typeof n !== 'number' || n !== Math.floor(n) || !isFinite(n)) throw libError(fn + ': give a whole number');
  }
  function unsigned(fn, n) {  // negative numbers as 32-bit two's complement, as the JVM's toHexString does
    whole(fn, n);
    if (n < 0) {
      if (n < -2147483648) throw libError(fn + ': negative numbers must fit in 32 bits; use ' + fn + 'TwoCompl');
      return n >>> 0;
    }
    return n;
  }
  function base64(bytes) {
    var out = '';
    for (var i = 0; i < bytes.length; i += 3) {
      var a = bytes.charCodeAt(i), b = bytes.charCodeAt(i + 1), c = bytes.charCodeAt(i + 2);
      var n = (a << 16) | ((b || 0) << 8) | (c || 0);
      out += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < bytes.length ? B64[(n >> 6) & 63] : '=') +
             (i + 2 < bytes.length ? B64[n & 63] : '=');
    }
    return out;
  }
  function unbase64(fn, text) {
    text = text.replace(/[\s=]+/g, '');
    if (!test(/^[A-Za-z0-9+/]*$/, text) || text.length % 4 === 1) throw libError(fn + ': not base64');
    var out = '', bits = 0, value = 0;
    for (var i = 0; i < text.length; i++) {
      value = (value << 6) | B64.indexOf(text[i]);
      bits += 6;
      if (bits >= 8) { bits -= 8; out += String.fromCharCode((value >> bits) & 255); }
    }
    return out;
  }
"""


def _decode_lpp(_principal: Principal, args: list[Any]) -> Any:
    try:
        return decode_microshare_list(str(args[0]))
    except LppError as exc:
        raise LibError(f"decodeCayenneLPP: {exc}") from None


class Library:
    """The functions of `lib`, by name; `source()` is the JavaScript installed before each robot's script."""

    def __init__(self, functions: Iterable[LibFunction] = ()) -> None:
        self._functions: dict[str, LibFunction] = {}
        self._source: str | None = None
        for function in functions:
            self.register(function)

    def register(self, function: LibFunction) -> None:
        """Add (or replace) `lib.<name>`."""
        if not function.name.isidentifier():
            raise ValueError(f"{function.name!r} is not a JavaScript identifier")
        self._functions[function.name] = function
        self._source = None

    def bind(self, name: str, answer: Answer) -> None:
        """Give a registered function its Python side (for built-ins whose answer needs services)."""
        function = self._functions[name]
        self.register(LibFunction(function.name, function.js, answer))

    @property
    def names(self) -> list[str]:
        return sorted(self._functions)

    def answer(self, name: str) -> Answer | None:
        function = self._functions.get(name)
        return function.answer if function is not None else None

    def source(self) -> str:
        if self._source is None:
            body = "".join(f"  lib.{f.name} = ({f.js});\n" for f in self._functions.values())
            self._source = _CORE % {
                "max_writes": MAX_WRITES,
                "max_pending": MAX_PENDING,
                "max_write_chars": MAX_WRITE_CHARS,
                "max_http": MAX_HTTP,
                "max_bindings": MAX_BINDINGS_CHARS,
                "max_mails": MAX_MAILS,
                "max_mail_chars": MAX_MAIL_CHARS,
                "functions": _HELPERS + body,
            }
        return self._source


def builtins() -> list[LibFunction]:
    """Microshare's lib. readShareById and readShareByTags get their Python side from the robots service."""
    answers: dict[str, Answer] = {"decodeCayenneLPP": _decode_lpp}
    return [LibFunction(name, js, answers.get(name)) for name, js in _BUILTINS_JS.items()]
