#!/usr/bin/env node
console.log('kovn', process.version, process.argv.slice(2));
