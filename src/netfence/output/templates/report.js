"use strict";
// Draws the heat map from the embedded data (#netfence-data) and lights up a node's curves in
// the graph. The DOM it builds is the report's contract with its tests: a pod cell carries
// data-from, data-to and data-allowed ("true"/"false"); a cell for a collapsed namespace carries
// data-from-namespace and/or data-to-namespace, data-count (flows allowed) and data-total.
(function () {
  const data = JSON.parse(document.getElementById("netfence-data").textContent);
  const matrix = data.matrix;
  const detail = matrix.detail === "pods";
  const collapsed = new Set();
  const portSelect = document.getElementById("port");
  const info = document.getElementById("cell-info");
  const host = document.getElementById("heatmap");
  const ALLOW = [46, 125, 50];
  const DENY = [243, 222, 222];

  function portLabel(port) {
    return port.port === null ? port.protocol : port.protocol + "/" + port.port;
  }

  // Namespace blocks in display order; `members` index the endpoint list (detail only).
  function blocks(namespaces) {
    let next = 0;
    return namespaces.map((ns, index) => {
      const members = [];
      for (let k = 0; k < ns.size; k++) members.push(next + k);
      next += ns.size;
      return { name: ns.name, label: ns.label, size: ns.size, members: members, index: index };
    });
  }

  function isOpen(block) {
    return detail && !collapsed.has(block.name);
  }

  function units(blockList, endpoints) {
    const out = [];
    for (const block of blockList) {
      if (isOpen(block)) {
        block.members.forEach((index, k) => {
          const endpoint = endpoints[index];
          out.push({
            block: block,
            index: index,
            id: endpoint.id,
            label: endpoint.namespace ? endpoint.name : endpoint.id,
            first: k === 0,
          });
        });
      } else {
        out.push({ block: block, label: block.size + " " + (block.name ? "pods" : "endpoints"), first: true });
      }
    }
    return out;
  }

  // true/false for a pod pair, [allowed, total] when either side is a collapsed namespace.
  function cellValue(p, row, column) {
    if (row.index !== undefined && column.index !== undefined) {
      return matrix.allowed[p][row.index].charCodeAt(column.index) === 49;
    }
    if (row.index === undefined && column.index === undefined) {
      return [matrix.namespaceAllowed[p][row.block.index][column.block.index], row.block.size * column.block.size];
    }
    const rows = row.index !== undefined ? [row.index] : row.block.members;
    const columns = column.index !== undefined ? [column.index] : column.block.members;
    let allowed = 0;
    for (const i of rows) {
      const bits = matrix.allowed[p][i];
      for (const j of columns) if (bits.charCodeAt(j) === 49) allowed++;
    }
    return [allowed, rows.length * columns.length];
  }

  function heat(share) {
    const f = share > 0 ? 0.2 + 0.8 * share : 0;
    const rgb = DENY.map((d, k) => Math.round(d + (ALLOW[k] - d) * f));
    return "rgb(" + rgb.join(", ") + ")";
  }

  function shareText(allowed, total) {
    if (allowed === 0) return "0";
    if (allowed === total) return "all";
    return Math.min(99, Math.max(1, Math.round((100 * allowed) / total))) + "%";
  }

  function cell(p, row, column) {
    const td = document.createElement("td");
    if (row.index !== undefined) td.dataset.from = row.id;
    else td.dataset.fromNamespace = row.block.name;
    if (column.index !== undefined) td.dataset.to = column.id;
    else td.dataset.toNamespace = column.block.name;
    const value = cellValue(p, row, column);
    if (typeof value === "boolean") {
      td.className = "cell " + (value ? "allow" : "deny");
      td.dataset.allowed = String(value);
    } else {
      td.className = "cell agg";
      td.dataset.count = String(value[0]);
      td.dataset.total = String(value[1]);
      td.style.backgroundColor = heat(value[1] ? value[0] / value[1] : 0);
      if (row.index === undefined && column.index === undefined) td.textContent = shareText(value[0], value[1]);
    }
    if (column.first) td.classList.add("block-start");
    return td;
  }

  function toggle(block) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "ns";
    button.dataset.namespace = block.name;
    button.textContent = block.label + (detail ? (isOpen(block) ? " ▾" : " ▸") : "");
    if (detail) button.title = (isOpen(block) ? "collapse " : "expand ") + block.label;
    else button.disabled = true;
    return button;
  }

  function header(className, text, title) {
    const th = document.createElement("th");
    th.className = className;
    if (text !== null) th.textContent = text;
    if (title) th.title = title;
    return th;
  }

  function render() {
    const p = Number(portSelect.value);
    const port = matrix.ports[p];
    const rowBlocks = blocks(matrix.sourceNamespaces);
    const columnBlocks = blocks(matrix.destinationNamespaces);
    const columns = units(columnBlocks, matrix.destinations);
    const table = document.createElement("table");
    table.className = "heat";
    table.id = "heatmap-table";
    table.dataset.port = port.port === null ? "" : String(port.port);
    table.dataset.protocol = port.protocol;
    const thead = table.createTHead();
    const top = thead.insertRow();
    const names = thead.insertRow();
    const corner = header("corner", "from \\ to", "rows: from, columns: to");
    corner.colSpan = 2;
    corner.rowSpan = 2;
    top.appendChild(corner);
    for (const block of columnBlocks) {
      const th = header("ns block-start", null, "");
      th.colSpan = isOpen(block) ? block.size : 1;
      th.appendChild(toggle(block));
      top.appendChild(th);
    }
    for (const column of columns) {
      const th = header("col" + (column.first ? " block-start" : ""), null, column.id || column.block.label);
      const span = document.createElement("span");
      span.textContent = column.label;
      th.appendChild(span);
      names.appendChild(th);
    }
    const body = table.createTBody();
    for (const block of rowBlocks) {
      const rows = units([block], matrix.sources);
      rows.forEach((row, k) => {
        const tr = body.insertRow();
        if (k === 0) {
          tr.className = "block-start";
          const th = header("ns", null, "");
          th.rowSpan = rows.length;
          th.appendChild(toggle(block));
          tr.appendChild(th);
        }
        tr.appendChild(header("row", row.label, row.id || block.label));
        for (const column of columns) tr.appendChild(cell(p, row, column));
      });
    }
    host.replaceChildren(table);
  }

  function describe(td) {
    const d = td.dataset;
    const from = "from" in d ? d.from : "namespace " + (d.fromNamespace || "(external)");
    const to = "to" in d ? d.to : "namespace " + (d.toNamespace || "(external)");
    const port = portLabel(matrix.ports[Number(portSelect.value)]);
    if ("allowed" in d) return from + " → " + to + "  " + port + ": " + (d.allowed === "true" ? "allowed" : "denied");
    return from + " → " + to + "  " + port + ": " + d.count + " of " + d.total + " flows allowed";
  }

  matrix.ports.forEach((port, p) => {
    const option = document.createElement("option");
    option.value = String(p);
    option.textContent = portLabel(port);
    portSelect.appendChild(option);
  });
  portSelect.addEventListener("change", render);
  host.addEventListener("click", (event) => {
    const button = event.target.closest("button.ns");
    if (!button || button.disabled) return;
    const name = button.dataset.namespace;
    if (collapsed.has(name)) collapsed.delete(name);
    else collapsed.add(name);
    render();
  });
  host.addEventListener("mouseover", (event) => {
    const td = event.target.closest("td.cell");
    if (td) info.textContent = describe(td);
  });
  const collapseAll = document.getElementById("collapse-all");
  const expandAll = document.getElementById("expand-all");
  if (collapseAll && expandAll) {
    collapseAll.addEventListener("click", () => {
      for (const ns of [...matrix.sourceNamespaces, ...matrix.destinationNamespaces]) collapsed.add(ns.name);
      render();
    });
    expandAll.addEventListener("click", () => {
      collapsed.clear();
      render();
    });
  }
  render();

  // The graph: pointing at (or focusing) a node lights its curves, outgoing on the left and
  // incoming on the right.
  const svg = document.getElementById("flow-graph");
  if (svg) {
    const edges = Array.from(svg.querySelectorAll(".edge"));
    const focus = (node) => {
      svg.classList.toggle("focus", node !== null);
      for (const edge of edges) {
        const lit = node !== null && edge.dataset[node.dataset.side] === node.dataset.group;
        edge.classList.toggle("lit", lit);
      }
    };
    for (const node of svg.querySelectorAll(".node")) {
      node.addEventListener("mouseenter", () => focus(node));
      node.addEventListener("mouseleave", () => focus(null));
      node.addEventListener("focus", () => focus(node));
      node.addEventListener("blur", () => focus(null));
    }
  }
})();
