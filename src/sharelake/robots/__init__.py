"""Robots' runtime: their scripts in the JavaScript sandbox, the `lib` they require, and their schedules.

`config` checks a robot's data, `lib` is the JavaScript side of `require('./libs/helpers')` with its registry,
`runtime` runs a script with record-and-replay, `scheduler` runs scheduled robots; `services.robots` wires
them to the lake.
"""
