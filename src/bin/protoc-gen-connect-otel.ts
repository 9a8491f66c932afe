#!/usr/bin/env node
import { runNodeJs } from "@bufbuild/protoplugin";
import { protocGenConnectOtel } from "../plugin.js";

runNodeJs(protocGenConnectOtel);
