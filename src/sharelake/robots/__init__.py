"""Robots' runtime: their scripts in the JavaScript sandbox and the `lib` they require.

`config` checks a robot's data, `lib` is the JavaScript side of `require('./libs/helpers')` with its registry,
`runtime` runs a script with record-and-replay; `services.robots` wires them to the lake, and
`services.schedules` runs scheduled robots.
"""
