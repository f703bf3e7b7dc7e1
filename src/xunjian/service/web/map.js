/* 风险一张图 — the map page of xunjian, written small: no libraries, no network but the API
 * (and the configured tile server, when there is one). Web-Mercator SVG map with pan/zoom,
 * issues coloured by category and outlined by status, flight footprints, a kernel-density
 * heat map on a canvas, an issue panel with evidence, properties, history and feedback.
 * zh-CN by default, English on the toggle.
 *
 * The API key comes from the key field (kept in localStorage) or once from `/?key=…` (then
 * removed from the address bar).
 *
 * 评价: the figures of `/stats` for the issues in view (per class; per district when the
 * service has `XUNJIAN_AREAS_FILE`), shown to keys that may read them.
 *
 * Test hooks: every issue is `circle.issue[data-issue-id]`; the panel carries
 * `data-issue-id`; `body[data-state]` is `loading`, `ready`, `nokey` or `error`;
 * `#evaluation[data-found]` is the 评价 total once loaded, its rows `tr[data-row]`.
 */
(function () {
  "use strict";

  var CONFIG = readConfig();
  var API = CONFIG.api || "/api/v1";
  var TILE = 256;
  var MAX_ZOOM = 22;
  var CATEGORIES = {
    road_damage: { color: "#e4572e", zh: "道路病害", en: "Road damage" },
    illegal_dumping: { color: "#8f5fbf", zh: "违规倾倒", en: "Illegal dumping" },
    spoil_truck: { color: "#2e86ab", zh: "渣土车", en: "Spoil trucks" }
  };
  var STATUSES = {
    candidate: { stroke: "#ffffff", dash: "3,2", zh: "待审核", en: "Candidate" },
    published: { stroke: "#ffffff", dash: "", zh: "已发布", en: "Published" },
    dispatched: { stroke: "#f6ae2d", dash: "", zh: "已派遣", en: "Dispatched" },
    in_progress: { stroke: "#f6ae2d", dash: "2,2", zh: "处置中", en: "In progress" },
    closed: { stroke: "#3bb273", dash: "", zh: "已结案", en: "Closed" },
    verified_fixed: { stroke: "#1b7f46", dash: "", zh: "核查已修复", en: "Verified fixed" },
    recurred: { stroke: "#c0392b", dash: "", zh: "复发", en: "Recurred" },
    rejected: { stroke: "#7f8c8d", dash: "1,2", zh: "已驳回", en: "Rejected" }
  };
  var CLASSES = {
    longitudinal_crack: "road_damage", transverse_crack: "road_damage",
    alligator_crack: "road_damage", pothole: "road_damage",
    garbage_pile: "illegal_dumping", construction_waste: "illegal_dumping",
    spoil_truck: "spoil_truck", spoil_truck_uncovered: "spoil_truck"
  };
  var TEXT = {
    zh: {
      title: "风险一张图", key: "API 密钥", save: "保存", heatmap: "热力图", points: "点位图",
      category: "类别", status: "状态", batch: "批次", all: "全部", footprints: "航迹覆盖",
      confidence: "最低置信度", time: "时间", since: "自", until: "至", fit: "全部",
      history: "处置记录", fb_confirm: "确认属实", fb_false_positive: "误报",
      fb_wrong_class: "类别错误", fb_wrong_place: "位置错误", loading: "加载中…",
      nokey: "请输入 API 密钥", shown: "显示 {n} 个问题", more: "(仅显示前 {n} 个)",
      denied: "密钥无效或无权限", failed: "加载失败", class: "类别", conf: "置信度",
      sigma: "定位误差", seen: "发现时间", last: "最近发现", obs: "观测次数", batches: "批次",
      place_prompt: "正确位置 (纬度,经度):", sent: "已提交反馈", no_evidence: "无证据图像",
      pick_place: "请在地图上点击正确位置", evaluation: "评价 (当前视野)", found: "发现",
      closed_n: "结案", fixed_n: "修复", recurred_n: "复发", hours: "时长h",
      in_days: "{d}天核查", total: "合计", area: "区域", outside: "区域外"
    },
    en: {
      title: "Risk map", key: "API key", save: "Save", heatmap: "Heat map", points: "Points",
      category: "Category", status: "Status", batch: "Batch", all: "All",
      footprints: "Flight footprints", confidence: "Min. confidence", time: "Time",
      since: "From", until: "To", fit: "Fit", history: "History", fb_confirm: "Confirm",
      fb_false_positive: "False positive", fb_wrong_class: "Wrong class",
      fb_wrong_place: "Wrong place", loading: "Loading…", nokey: "Enter an API key",
      shown: "{n} issues shown", more: "(first {n} only)", denied: "Key invalid or not allowed",
      failed: "Loading failed", class: "Class", conf: "Confidence", sigma: "Position σ",
      seen: "First seen", last: "Last seen", obs: "Observations", batches: "Batches",
      place_prompt: "Right place (lat,lon):", sent: "Feedback sent",
      no_evidence: "No evidence image", pick_place: "Click the right place on the map",
      evaluation: "Evaluation (in view)", found: "Found", closed_n: "Closed",
      fixed_n: "Fixed", recurred_n: "Back", hours: "h", in_days: "≤{d}d", total: "All",
      area: "Area", outside: "Outside areas"
    }
  };
  var LIMIT = 5000;

  var state = {
    lang: localStorage.getItem("xunjian.lang") || "zh",
    key: "",
    center: { lat: 29.563, lon: 106.5516 },
    zoom: 15,
    issues: [],
    footprints: [],
    heat: false,
    selected: null,
    fitted: false,
    pickingPlace: false,
    reloadTimer: null,
    request: 0
  };

  var $ = function (id) { return document.getElementById(id); };
  var mapEl = $("map");
  var svg = $("overlay");
  var issueLayer = $("issue-layer");
  var footprintLayer = $("footprint-layer");
  var SVG_NS = "http://www.w3.org/2000/svg";

  function readConfig() {
    var el = document.getElementById("xj-config");
    var text = el ? el.textContent.replace(/\/\*[^*]*\*\//, "").trim() : "{}";
    try { return JSON.parse(text || "{}"); } catch (e) { return {}; }
  }

  function t(name, values) {
    var s = (TEXT[state.lang] || TEXT.zh)[name] || name;
    Object.keys(values || {}).forEach(function (k) { s = s.replace("{" + k + "}", values[k]); });
    return s;
  }

  /* ---------------------------------------------------------------- projection */

  function worldSize(zoom) { return TILE * Math.pow(2, zoom); }

  function project(lat, lon, zoom) {
    var size = worldSize(zoom);
    var s = Math.sin(Math.max(-85.05, Math.min(85.05, lat)) * Math.PI / 180);
    return {
      x: (lon + 180) / 360 * size,
      y: (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * size
    };
  }

  function unproject(x, y, zoom) {
    var size = worldSize(zoom);
    var lon = x / size * 360 - 180;
    var n = Math.PI - 2 * Math.PI * y / size;
    return { lat: 180 / Math.PI * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n))), lon: lon };
  }

  function viewSize() { return { w: mapEl.clientWidth || 800, h: mapEl.clientHeight || 600 }; }

  function toScreen(lat, lon) {
    var c = project(state.center.lat, state.center.lon, state.zoom);
    var p = project(lat, lon, state.zoom);
    var v = viewSize();
    return { x: p.x - c.x + v.w / 2, y: p.y - c.y + v.h / 2 };
  }

  function fromScreen(x, y) {
    var c = project(state.center.lat, state.center.lon, state.zoom);
    var v = viewSize();
    return unproject(c.x + x - v.w / 2, c.y + y - v.h / 2, state.zoom);
  }

  function viewBbox() {
    var v = viewSize();
    var nw = fromScreen(0, 0), se = fromScreen(v.w, v.h);
    var clamp = function (x, lo, hi) { return Math.max(lo, Math.min(hi, x)); };
    return [clamp(nw.lon, -180, 180), clamp(se.lat, -90, 90),
            clamp(se.lon, -180, 180), clamp(nw.lat, -90, 90)];
  }

  /* -------------------------------------------------------------- base layers */

  function drawTiles() {
    var holder = $("tiles");
    if (!CONFIG.tile_url) { holder.innerHTML = ""; return; }
    var z = Math.max(0, Math.min(MAX_ZOOM, Math.round(state.zoom)));
    var scale = Math.pow(2, state.zoom - z);
    var c = project(state.center.lat, state.center.lon, z);
    var v = viewSize();
    var size = TILE * scale;
    var x0 = Math.floor((c.x - v.w / 2 / scale) / TILE), x1 = Math.floor((c.x + v.w / 2 / scale) / TILE);
    var y0 = Math.floor((c.y - v.h / 2 / scale) / TILE), y1 = Math.floor((c.y + v.h / 2 / scale) / TILE);
    var n = Math.pow(2, z), wanted = {};
    for (var x = x0; x <= x1; x++) {
      for (var y = Math.max(0, y0); y <= Math.min(n - 1, y1); y++) {
        var wx = ((x % n) + n) % n;
        var url = CONFIG.tile_url.replace("{z}", z).replace("{x}", wx).replace("{y}", y);
        wanted[url] = { left: (x * TILE - c.x) * scale + v.w / 2, top: (y * TILE - c.y) * scale + v.h / 2 };
      }
    }
    Array.prototype.slice.call(holder.children).forEach(function (img) {
      if (!wanted[img.dataset.src]) { holder.removeChild(img); }
    });
    Object.keys(wanted).forEach(function (url) {
      var img = holder.querySelector('img[data-src="' + CSS.escape(url) + '"]');
      if (!img) {
        img = document.createElement("img");
        img.dataset.src = url;
        img.alt = "";
        img.onerror = function () { img.style.visibility = "hidden"; };
        img.src = url;
        holder.appendChild(img);
      }
      img.style.left = wanted[url].left + "px";
      img.style.top = wanted[url].top + "px";
      img.style.width = img.style.height = size + 1 + "px";
    });
  }

  function drawGrid() {
    /* The plain fallback: a graticule with degree labels, always drawn under tiles too. */
    var canvas = $("grid"), v = viewSize();
    canvas.width = v.w; canvas.height = v.h;
    var ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, v.w, v.h);
    if (CONFIG.tile_url) { return; }
    var nw = fromScreen(0, 0), se = fromScreen(v.w, v.h);
    var span = Math.max(se.lon - nw.lon, 1e-9);
    var step = Math.pow(10, Math.floor(Math.log10(span / 4)));
    if (span / step > 16) { step *= 5; } else if (span / step > 8) { step *= 2; }
    var digits = Math.max(0, -Math.floor(Math.log10(step)));
    ctx.strokeStyle = "#c9d3dc"; ctx.fillStyle = "#6b7b8c"; ctx.lineWidth = 1;
    ctx.font = "11px system-ui, sans-serif";
    for (var lon = Math.ceil(nw.lon / step) * step; lon <= se.lon; lon += step) {
      var x = toScreen(nw.lat, lon).x;
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, v.h); ctx.stroke();
      ctx.fillText(lon.toFixed(digits) + "°", x + 3, 12);
    }
    for (var lat = Math.ceil(se.lat / step) * step; lat <= nw.lat; lat += step) {
      var y = toScreen(lat, nw.lon).y;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(v.w, y); ctx.stroke();
      ctx.fillText(lat.toFixed(digits) + "°", 3, y - 3);
    }
  }

  /* ------------------------------------------------------------ data overlays */

  function categoryOf(f) {
    return f.properties.category || CLASSES[f.properties["class"]] || "road_damage";
  }

  function drawIssues() {
    var v = viewSize();
    svg.setAttribute("viewBox", "0 0 " + v.w + " " + v.h);
    var radius = Math.max(4, Math.min(9, state.zoom - 8));
    var frag = document.createDocumentFragment();
    state.issues.forEach(function (f) {
      var c = f.geometry.coordinates, p = toScreen(c[1], c[0]);
      if (p.x < -20 || p.y < -20 || p.x > v.w + 20 || p.y > v.h + 20) { return; }
      var props = f.properties, st = STATUSES[props.status] || STATUSES.candidate;
      var el = document.createElementNS(SVG_NS, "circle");
      el.setAttribute("class", "issue" + (state.selected === props.id ? " selected" : ""));
      el.setAttribute("cx", p.x.toFixed(1));
      el.setAttribute("cy", p.y.toFixed(1));
      el.setAttribute("r", radius);
      el.setAttribute("fill", (CATEGORIES[categoryOf(f)] || CATEGORIES.road_damage).color);
      el.setAttribute("fill-opacity", props.status === "rejected" ? "0.35" : "0.9");
      el.setAttribute("stroke", st.stroke);
      el.setAttribute("stroke-width", "2");
      if (st.dash) { el.setAttribute("stroke-dasharray", st.dash); }
      el.dataset.issueId = props.id;
      el.dataset.status = props.status;
      el.dataset.category = categoryOf(f);
      var title = document.createElementNS(SVG_NS, "title");
      title.textContent = (state.lang === "en" ? props.class_en : props.class_zh) + " · " +
        statusName(props.status) + " · " + Number(props.confidence).toFixed(2);
      el.appendChild(title);
      frag.appendChild(el);
    });
    issueLayer.replaceChildren(frag);
  }

  function drawFootprints() {
    var frag = document.createDocumentFragment();
    if ($("footprints-toggle").checked) {
      state.footprints.forEach(function (f) {
        if (!f.geometry || f.geometry.type !== "Polygon") { return; }
        var points = f.geometry.coordinates[0].map(function (c) {
          var p = toScreen(c[1], c[0]);
          return p.x.toFixed(1) + "," + p.y.toFixed(1);
        }).join(" ");
        var el = document.createElementNS(SVG_NS, "polygon");
        el.setAttribute("class", "footprint");
        el.setAttribute("points", points);
        el.dataset.frame = f.properties.key;
        frag.appendChild(el);
      });
    }
    footprintLayer.replaceChildren(frag);
  }

  function drawHeat() {
    /* Kernel density: a Gaussian-ish blob per issue, summed as alpha, then coloured. */
    var canvas = $("heat"), v = viewSize();
    canvas.hidden = !state.heat;
    issueLayer.style.display = state.heat ? "none" : "";
    if (!state.heat) { return; }
    canvas.width = v.w; canvas.height = v.h;
    var ctx = canvas.getContext("2d");
    var radius = Math.max(12, Math.min(60, 4 * Math.pow(2, state.zoom - 14)));
    ctx.clearRect(0, 0, v.w, v.h);
    state.issues.forEach(function (f) {
      if (f.properties.status === "rejected") { return; }
      var c = f.geometry.coordinates, p = toScreen(c[1], c[0]);
      var g = ctx.createRadialGradient(p.x, p.y, 0, p.x, p.y, radius);
      g.addColorStop(0, "rgba(0,0,0,0.35)");
      g.addColorStop(1, "rgba(0,0,0,0)");
      ctx.fillStyle = g;
      ctx.fillRect(p.x - radius, p.y - radius, 2 * radius, 2 * radius);
    });
    var image = ctx.getImageData(0, 0, v.w, v.h), d = image.data;
    for (var i = 0; i < d.length; i += 4) {
      var a = d[i + 3] / 255;
      if (a === 0) { continue; }
      d[i] = Math.round(255 * Math.min(1, 2 * a));           /* sparse green → dense red */
      d[i + 1] = Math.round(255 * Math.max(0, 1 - 1.5 * a) + 60 * (1 - a));
      d[i + 2] = Math.round(120 * (1 - a));
      d[i + 3] = Math.round(255 * Math.min(1, 0.25 + a));
    }
    ctx.putImageData(image, 0, 0);
  }

  function render() {
    drawTiles();
    drawGrid();
    drawFootprints();
    drawIssues();
    drawHeat();
    $("attribution").textContent = CONFIG.tile_url ? (CONFIG.tile_attribution || "") : "xunjian";
  }

  /* ---------------------------------------------------------------- API calls */

  function api(path, options) {
    options = options || {};
    var headers = Object.assign({ "X-API-Key": state.key }, options.headers || {});
    return fetch(API + path, Object.assign({}, options, { headers: headers })).then(function (r) {
      if (r.status === 401 || r.status === 403) { throw new ApiError(t("denied"), r.status); }
      if (!r.ok) { throw new ApiError(t("failed") + " (" + r.status + ")", r.status); }
      return r;
    });
  }

  function ApiError(message, status) { this.message = message; this.status = status; }

  function setStatus(text, isError) {
    var el = $("status");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  function filterQuery(withBbox) {
    var q = new URLSearchParams();
    document.querySelectorAll("#category-filter input:checked").forEach(function (el) { q.append("category", el.value); });
    if (q.getAll("category").length === Object.keys(CATEGORIES).length) { q.delete("category"); }
    document.querySelectorAll("#status-filter input:checked").forEach(function (el) { q.append("status", el.value); });
    if (q.getAll("status").length === Object.keys(STATUSES).length) { q.delete("status"); }
    var batch = $("batch-filter").value;
    if (batch) { q.set("batch", batch); }
    var conf = Number($("confidence-filter").value);
    if (conf > 0) { q.set("min_confidence", conf.toFixed(2)); }
    if ($("since-filter").value) { q.set("since", $("since-filter").value + "T00:00:00+08:00"); }
    if ($("until-filter").value) { q.set("until", $("until-filter").value + "T23:59:59+08:00"); }
    if (withBbox) { q.set("bbox", viewBbox().map(function (x) { return x.toFixed(6); }).join(",")); }
    q.set("limit", String(LIMIT));
    return q;
  }

  function loadIssues() {
    if (!state.key) { document.body.dataset.state = "nokey"; setStatus(t("nokey"), true); return Promise.resolve(); }
    var ticket = ++state.request;
    setStatus(t("loading"));
    return api("/issues?" + filterQuery(state.fitted).toString())
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (ticket !== state.request) { return; }
        state.issues = body.features || [];
        if (!state.fitted && state.issues.length) { fitTo(state.issues); state.fitted = true; }
        render();
        setStatus(t("shown", { n: state.issues.length }) + (body.next ? " " + t("more", { n: LIMIT }) : ""));
        document.body.dataset.state = "ready";
        loadEvaluation(ticket);
      })
      .catch(function (e) {
        if (ticket !== state.request) { return; }
        setStatus(e.message || String(e), true);
        document.body.dataset.state = e.status === 401 || e.status === 403 ? "nokey" : "error";
      });
  }

  /* 评价: found / closed / verified fixed / recurred / time to close, for the view */

  function loadEvaluation(ticket) {
    var q = new URLSearchParams();
    if (state.fitted) { q.set("bbox", viewBbox().map(function (x) { return x.toFixed(6); }).join(",")); }
    if ($("since-filter").value) { q.set("since", $("since-filter").value + "T00:00:00+08:00"); }
    api("/stats?" + q.toString()).then(function (r) { return r.json(); }).then(function (body) {
      if (ticket !== state.request) { return; }
      state.evaluation = body;
      drawEvaluation();
    }).catch(function () { $("evaluation").hidden = true; /* a key without 评价 access */ });
  }

  function evaluationTable(table, first, rows, days) {
    var head = [first, t("found"), t("closed_n"), t("fixed_n"), t("recurred_n"), t("hours"), t("in_days", { d: days })];
    var tips = ["", "", "", "verified fixed", "recurred", "median hours from published to closed",
                "share of the closed verified fixed within " + days + " days"];
    var thead = document.createElement("thead"), tr = document.createElement("tr");
    head.forEach(function (h, i) {
      var th = document.createElement("th"); th.textContent = h;
      if (tips[i]) { th.title = tips[i]; }
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    var tbody = document.createElement("tbody");
    rows.forEach(function (r) {
      var v = r.values, row = document.createElement("tr");
      row.dataset.row = r.key;
      if (r.total) { row.className = "total"; }
      var share = v.share_verified_within_days;
      [r.label, v.found, v.closed, v.verified_fixed, v.recurred,
       v.median_hours_to_close === null ? "—" : v.median_hours_to_close,
       share === null ? "—" : Math.round(share * 100) + "%"].forEach(function (x) {
        var td = document.createElement("td"); td.textContent = String(x); row.appendChild(td);
      });
      tbody.appendChild(row);
    });
    table.replaceChildren(thead, tbody);
    table.hidden = rows.length === 0;
  }

  function drawEvaluation() {
    var body = state.evaluation;
    if (!body) { return; }
    var rows = Object.keys(body.by_class).map(function (name) {
      var v = body.by_class[name];
      return { key: name, label: state.lang === "en" ? v.en : v.zh, values: v };
    });
    rows.push({ key: "all", label: t("total"), values: body.overall, total: true });
    evaluationTable($("evaluation-table"), t("class"), rows, body.within_days);
    var areas = body.by_area ? Object.keys(body.by_area).map(function (name) {
      var label = name === "(outside every area)" ? t("outside") : name;
      return { key: "area:" + name, label: label, values: body.by_area[name] };
    }) : [];
    evaluationTable($("evaluation-areas"), t("area"), areas, body.within_days);
    $("evaluation").hidden = false;
    $("evaluation").dataset.found = String(body.overall.found);
  }

  function loadBatches() {
    if (!state.key) { return; }
    api("/batches?limit=50").then(function (r) { return r.json(); }).then(function (batches) {
      var select = $("batch-filter"), keep = select.value;
      select.querySelectorAll("option[value]:not([value=''])").forEach(function (o) { o.remove(); });
      batches.forEach(function (b) {
        var o = document.createElement("option");
        o.value = b.batch_id;
        o.textContent = b.batch_id + " (" + b.platform + ", " + b.status + ")";
        select.appendChild(o);
      });
      select.value = keep;
      state.batches = batches;
      loadFootprints();
    }).catch(function () { /* a key without batch access still sees the issues */ });
  }

  function loadFootprints() {
    var chosen = $("batch-filter").value;
    var ids = chosen ? [chosen] : (state.batches || []).slice(0, 10).map(function (b) { return b.batch_id; });
    Promise.all(ids.map(function (id) {
      return api("/batches/" + encodeURIComponent(id) + "/footprints")
        .then(function (r) { return r.json(); })
        .then(function (fc) { return fc.features || []; })
        .catch(function () { return []; });
    })).then(function (lists) {
      state.footprints = [].concat.apply([], lists);
      drawFootprints();
      document.body.dataset.footprints = String(state.footprints.length);  // loaded (tests wait on it)
    });
  }

  function scheduleReload() {
    clearTimeout(state.reloadTimer);
    state.reloadTimer = setTimeout(loadIssues, 300);
  }

  /* --------------------------------------------------------------- the panel */

  function statusName(s) { return (STATUSES[s] || {})[state.lang] || s; }

  function openIssue(id) {
    state.selected = id;
    drawIssues();
    var panel = $("panel");
    panel.hidden = false;
    panel.dataset.issueId = id;
    panel.dataset.loaded = "false";
    api("/issues/" + encodeURIComponent(id)).then(function (r) { return r.json(); }).then(function (f) {
      if (state.selected !== id) { return; }
      showIssue(f);
      panel.dataset.loaded = "true";
    }).catch(function (e) { setStatus(e.message, true); });
    loadEvidence(id);
  }

  function loadEvidence(id) {
    var img = $("evidence");
    if (img.src && img.src.indexOf("blob:") === 0) { URL.revokeObjectURL(img.src); }
    img.removeAttribute("src");
    img.dataset.issueId = id;
    img.dataset.loaded = "false";
    $("evidence-caption").textContent = "";
    api("/issues/" + encodeURIComponent(id) + "/evidence").then(function (r) { return r.blob(); }).then(function (blob) {
      if (state.selected !== id) { return; }
      img.onload = function () { img.dataset.loaded = "true"; };
      img.src = URL.createObjectURL(blob);
    }).catch(function () { $("evidence-caption").textContent = t("no_evidence"); });
  }

  function row(label, value) {
    var tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
    th.textContent = label; td.textContent = value == null ? "—" : String(value);
    tr.appendChild(th); tr.appendChild(td);
    return tr;
  }

  function showIssue(f) {
    state.shown = f;
    var p = f.properties, c = f.geometry.coordinates;
    $("panel-title").textContent = (state.lang === "en" ? p.class_en : p.class_zh) + " · " + statusName(p.status);
    $("evidence").alt = p.id;
    var table = $("panel-props");
    table.replaceChildren(
      row("ID", p.id),
      row(t("class"), p["class"] + " / " + p.class_zh),
      row(t("status"), statusName(p.status)),
      row(t("conf"), Number(p.confidence).toFixed(3)),
      row(t("sigma"), Number(p.sigma_m).toFixed(2) + " m"),
      row("lat, lon", c[1].toFixed(7) + ", " + c[0].toFixed(7)),
      row(t("seen"), p.first_seen),
      row(t("last"), p.last_seen),
      row(t("obs"), p.observation_count),
      row(t("batches"), (p.batch_ids || []).join(", "))
    );
    var list = $("panel-history");
    list.replaceChildren.apply(list, (p.history || []).map(function (e) {
      var li = document.createElement("li");
      var move = e.to_status ? " " + (e.from_status ? statusName(e.from_status) + " → " : "") + statusName(e.to_status) : "";
      li.textContent = e.at.replace("T", " ").slice(0, 19) + " · " + e.kind + move + " · " + e.source + (e.note ? " · " + e.note : "");
      return li;
    }));
  }

  function sendFeedback(kind, extra) {
    var id = state.selected;
    if (!id) { return; }
    var body = Object.assign({ kind: kind }, extra || {});
    api("/issues/" + encodeURIComponent(id) + "/feedback", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function () {
      setStatus(t("sent"));
      openIssue(id);
      loadIssues();
    }).catch(function (e) { setStatus(e.message, true); });
  }

  /* ------------------------------------------------------------ interaction */

  function fitTo(features) {
    var lats = features.map(function (f) { return f.geometry.coordinates[1]; });
    var lons = features.map(function (f) { return f.geometry.coordinates[0]; });
    var s = Math.min.apply(null, lats), n = Math.max.apply(null, lats);
    var w = Math.min.apply(null, lons), e = Math.max.apply(null, lons);
    state.center = { lat: (s + n) / 2, lon: (w + e) / 2 };
    var v = viewSize(), z = 19;
    while (z > 2) {
      var a = project(n, w, z), b = project(s, e, z);
      if (b.x - a.x < v.w * 0.8 && b.y - a.y < v.h * 0.8) { break; }
      z -= 0.5;
    }
    state.zoom = z;
  }

  function zoomAt(x, y, delta) {
    var before = fromScreen(x, y);
    state.zoom = Math.max(2, Math.min(MAX_ZOOM, state.zoom + delta));
    var after = toScreen(before.lat, before.lon);
    var c = project(state.center.lat, state.center.lon, state.zoom);
    state.center = unproject(c.x + after.x - x, c.y + after.y - y, state.zoom);
    render();
    scheduleReload();
  }

  function bindMap() {
    var drag = null;
    mapEl.addEventListener("pointerdown", function (ev) {
      if (ev.target.closest("button") || ev.target.classList.contains("issue")) { return; }
      drag = { x: ev.clientX, y: ev.clientY, moved: false, c: project(state.center.lat, state.center.lon, state.zoom) };
      mapEl.setPointerCapture(ev.pointerId);
      mapEl.classList.add("dragging");
    });
    mapEl.addEventListener("pointermove", function (ev) {
      if (!drag) { return; }
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; }
      state.center = unproject(drag.c.x - dx, drag.c.y - dy, state.zoom);
      render();
    });
    mapEl.addEventListener("pointerup", function (ev) {
      if (!drag) { return; }
      var moved = drag.moved;
      drag = null;
      mapEl.classList.remove("dragging");
      if (moved) { scheduleReload(); return; }
      if (state.pickingPlace) {
        var r = mapEl.getBoundingClientRect(), at = fromScreen(ev.clientX - r.left, ev.clientY - r.top);
        state.pickingPlace = false;
        sendFeedback("wrong_place", { lat: at.lat, lon: at.lon });
      }
    });
    mapEl.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var r = mapEl.getBoundingClientRect();
      zoomAt(ev.clientX - r.left, ev.clientY - r.top, ev.deltaY < 0 ? 0.5 : -0.5);
    }, { passive: false });
    issueLayer.addEventListener("click", function (ev) {
      var el = ev.target.closest(".issue");
      if (el) { openIssue(el.dataset.issueId); }
    });
    var v = function () { return viewSize(); };
    $("zoom-in").onclick = function () { zoomAt(v().w / 2, v().h / 2, 1); };
    $("zoom-out").onclick = function () { zoomAt(v().w / 2, v().h / 2, -1); };
    $("zoom-fit").onclick = function () { state.fitted = false; loadIssues(); };
    window.addEventListener("resize", render);
  }

  function bindControls() {
    $("key-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      state.key = $("key-input").value.trim();
      localStorage.setItem("xunjian.key", state.key);
      state.fitted = false;
      loadIssues();
      loadBatches();
    });
    $("lang-toggle").onclick = function () {
      state.lang = state.lang === "zh" ? "en" : "zh";
      localStorage.setItem("xunjian.lang", state.lang);
      applyLanguage();
      render();
      if (state.shown && !$("panel").hidden) { showIssue(state.shown); }
      loadIssues();
    };
    $("view-toggle").onclick = function () {
      state.heat = !state.heat;
      applyLanguage();
      drawHeat();
    };
    ["since-filter", "until-filter", "batch-filter"].forEach(function (id) {
      $(id).addEventListener("change", function () { if (id === "batch-filter") { loadFootprints(); } loadIssues(); });
    });
    $("confidence-filter").addEventListener("input", function () {
      $("confidence-value").textContent = Number($("confidence-filter").value).toFixed(2);
      scheduleReload();
    });
    $("footprints-toggle").addEventListener("change", drawFootprints);
    $("panel-close").onclick = function () { state.selected = null; $("panel").hidden = true; drawIssues(); };
    $("feedback").addEventListener("click", function (ev) {
      var kind = ev.target.dataset && ev.target.dataset.kind;
      if (!kind) { return; }
      if (kind === "wrong_class") {
        var select = $("feedback-class");
        select.hidden = false;
        select.focus();
      } else if (kind === "wrong_place") {
        state.pickingPlace = true;
        setStatus(t("pick_place"));
      } else {
        sendFeedback(kind);
      }
    });
    $("feedback-class").addEventListener("change", function (ev) {
      if (ev.target.value) { sendFeedback("wrong_class", { class_name: ev.target.value }); }
      ev.target.hidden = true;
    });
  }

  function buildFilters() {
    var cat = $("category-filter");
    Object.keys(CATEGORIES).forEach(function (name) {
      var label = document.createElement("label");
      label.innerHTML = '<input type="checkbox" checked> <span class="swatch"></span><span class="name"></span>';
      label.querySelector("input").value = name;
      label.querySelector(".swatch").style.background = CATEGORIES[name].color;
      label.dataset.category = name;
      cat.appendChild(label);
    });
    var st = $("status-filter");
    Object.keys(STATUSES).forEach(function (name) {
      var label = document.createElement("label");
      label.innerHTML = '<input type="checkbox"> <span class="swatch"></span><span class="name"></span>';
      var input = label.querySelector("input");
      input.value = name;
      input.checked = name !== "rejected";
      var sw = label.querySelector(".swatch");
      sw.style.borderColor = STATUSES[name].stroke;
      sw.style.borderWidth = "2px";
      sw.style.borderStyle = STATUSES[name].dash ? "dashed" : "solid";
      label.dataset.status = name;
      st.appendChild(label);
    });
    [cat, st].forEach(function (el) { el.addEventListener("change", loadIssues); });
    var select = $("feedback-class");
    select.appendChild(document.createElement("option"));
    Object.keys(CLASSES).forEach(function (name) {
      var o = document.createElement("option");
      o.value = name; o.textContent = name;
      select.appendChild(o);
    });
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang === "en" ? "en" : "zh-CN";
    document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t(el.dataset.i18n); });
    $("view-toggle").textContent = state.heat ? t("points") : t("heatmap");
    $("view-toggle").setAttribute("aria-pressed", String(state.heat));
    $("lang-toggle").textContent = state.lang === "en" ? "中文" : "English";
    document.querySelectorAll("#category-filter label").forEach(function (l) {
      l.querySelector(".name").textContent = CATEGORIES[l.dataset.category][state.lang];
    });
    document.querySelectorAll("#status-filter label").forEach(function (l) {
      l.querySelector(".name").textContent = statusName(l.dataset.status);
    });
    document.title = t("title") + " · xunjian";
    drawEvaluation();
  }

  function start() {
    var params = new URLSearchParams(location.search);
    if (params.get("key")) {
      localStorage.setItem("xunjian.key", params.get("key"));
      params.delete("key");
      var rest = params.toString();
      history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
    }
    if (params.get("lang") === "en" || params.get("lang") === "zh") { state.lang = params.get("lang"); }
    state.key = localStorage.getItem("xunjian.key") || "";
    $("key-input").value = state.key;
    buildFilters();
    applyLanguage();
    bindMap();
    bindControls();
    render();
    loadIssues();
    loadBatches();
  }

  start();
})();
