#!/usr/bin/env node
// bench/tpl_render.js - the peer of bench_tpl_render: the same template and
// data rendered with the npm `mustache` package (mustache.js), the most used
// Mustache implementation. Mustache.render caches the parsed template, so
// this measures rendering, as the C side does.
//
//   node bench/tpl_render.js TEMPLATE DATA [--seconds S] [--rounds N] [--print]
//
// Prints {"impl":"mustache.js","version":...,"renders":...,"seconds":...,
// "rate":...,"bytes":...}: the best of N rounds of S seconds (3 x 1 s).
'use strict';

const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
let seconds = 1, rounds = 3, print = false;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--seconds') seconds = Number(args[++i]);
  else if (args[i] === '--rounds') rounds = Number(args[++i]);
  else if (args[i] === '--print') print = true;
  else files.push(args[i]);
}
if (files.length !== 2 || !(seconds > 0) || !(rounds >= 1)) {
  process.stderr.write('usage: node tpl_render.js TEMPLATE DATA [--seconds S] [--rounds N] [--print]\n');
  process.exit(2);
}

const peers = path.join(__dirname, 'peers', 'node_modules');
const Mustache = require(path.join(peers, 'mustache'));
const version = require(path.join(peers, 'mustache', 'package.json')).version;
const template = fs.readFileSync(files[0], 'utf8');
const data = JSON.parse(fs.readFileSync(files[1], 'utf8'));

let out = Mustache.render(template, data);
if (print) {
  process.stdout.write(out);
  process.exit(0);
}

let best = { rate: 0, n: 0, secs: 0 };
for (let r = 0; r < rounds; r++) {
  let n = 0;
  const start = process.hrtime.bigint();
  let el = 0;
  do {
    for (let k = 0; k < 1000; k++) out = Mustache.render(template, data);
    n += 1000;
    el = Number(process.hrtime.bigint() - start) / 1e9;
  } while (el < seconds);
  if (n / el > best.rate) best = { rate: n / el, n, secs: el };
}
process.stdout.write(JSON.stringify({
  impl: 'mustache.js', version, renders: best.n, seconds: Number(best.secs.toFixed(3)),
  rate: Math.round(best.rate), bytes: Buffer.byteLength(out),
}) + '\n');
