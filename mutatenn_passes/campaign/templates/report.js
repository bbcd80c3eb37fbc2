function cellValue(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;
var n=parseFloat(v);return (v!==''&&!isNaN(n)&&isFinite(v))?n:v.toLowerCase();}
function sortTable(table,col,dir){var tb=table.tBodies[0];var rows=Array.from(tb.rows);
rows.sort(function(a,b){var x=cellValue(a.cells[col]),y=cellValue(b.cells[col]);
var tx=typeof x,ty=typeof y;if(tx!==ty){return (tx==='number'?-1:1)*dir;}
return (x<y?-1:x>y?1:0)*dir;});rows.forEach(function(r){tb.appendChild(r);});
Array.from(table.tHead.rows[0].cells).forEach(function(th,i){th.classList.remove('asc','desc');
if(i===col)th.classList.add(dir>0?'asc':'desc');});table.setAttribute('data-sorted',
table.tHead.rows[0].cells[col].getAttribute('data-col')+':'+(dir>0?'asc':'desc'));}
function makeSortable(table){Array.from(table.tHead.rows[0].cells).forEach(function(th,i){
th.classList.add('sortable');th.addEventListener('click',function(){
var dir=th.classList.contains('asc')?-1:1;sortTable(table,i,dir);});});}
document.addEventListener('DOMContentLoaded',function(){
document.querySelectorAll('table.sortable').forEach(makeSortable);
var m=/sort=([A-Za-z0-9_]+)(?::(asc|desc))?/.exec(location.hash);
if(m){var t=document.getElementById('mutants');var ths=Array.from(t.tHead.rows[0].cells);
ths.forEach(function(th,i){if(th.getAttribute('data-col')===m[1])sortTable(t,i,m[2]==='desc'?-1:1);});}});
