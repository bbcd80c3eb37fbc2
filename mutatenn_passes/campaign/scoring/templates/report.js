// Small tables written into the page: sorted by a click on a header.
function cellValue(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;
var n=parseFloat(v);return (v!==''&&!isNaN(n)&&isFinite(v))?n:v.toLowerCase();}
function sortTable(table,col,dir){var tb=table.tBodies[0];var rows=Array.from(tb.rows);
rows.sort(function(a,b){var x=cellValue(a.cells[col]),y=cellValue(b.cells[col]);
var tx=typeof x,ty=typeof y;if(tx!==ty){return (tx==='number'?-1:1)*dir;}
return (x<y?-1:x>y?1:0)*dir;});rows.forEach(function(r){tb.appendChild(r);});
Array.from(table.tHead.rows[0].cells).forEach(function(th,i){th.classList.remove('asc','desc');
if(i===col)th.classList.add(dir>0?'asc':'desc');});}
function makeSortable(table){Array.from(table.tHead.rows[0].cells).forEach(function(th,i){
th.classList.add('sortable');th.addEventListener('click',function(){
var dir=th.classList.contains('asc')?-1:1;sortTable(table,i,dir);});});}

// Long tables: their rows come from report-data.js (window.MUTATENN_DATA, see report.py) and
// are shown a page at a time, filtered by the menus and sorted by a click on a header. The
// mutants table keeps its view in the address: #operator=X&killed=1&sort=rbo:desc&page=2.
var PAGE_ROWS=100;
function esc(v){return String(v===null||v===undefined?'':v).replace(/[&<>"']/g,
function(c){return '&#'+c.charCodeAt(0)+';';});}
function fmt(v){if(v===null||v===undefined||v==='')return '';if(typeof v!=='number')return esc(v);
if(!isFinite(v))return String(v);var a=Math.abs(v);
return (a>=1e4||(v!==0&&a<1e-3))?v.toExponential(2):v.toFixed(3);}
// The value a cell sorts and filters by.
function cellKey(kind,v){if(kind==='sites'||kind==='status'||kind==='link')return v[0];
return kind==='bool'?(v?1:0):v;}
function cellHtml(kind,v){var dv=' data-v="'+esc(cellKey(kind,v))+'"';
switch(kind){case 'num':return '<td class="num"'+dv+'>'+fmt(v)+'</td>';
case 'bool':return '<td'+dv+'>'+(v?'yes':'')+'</td>';
case 'sites':return '<td'+dv+' title="'+esc(v[2])+'">'+(esc(v[0])||'—')+
'<span class="muted"> / '+esc(v[1])+'</span></td>';
case 'status':return '<td class="st-'+esc(v[0])+'"'+dv+' title="'+esc(v[1])+'">'+esc(v[0]+v[2])+
(v[3]?' <span class="muted">dup</span>':'')+
(v[4]?' <span class="muted ignored" title="'+esc(v[4])+'">ignored</span>':'')+
(v[5]?' <span class="survived-tag">survived</span>':'')+'</td>';
case 'link':return '<td'+dv+'>'+(v[1]?'<a href="'+esc(v[1])+'">'+esc(v[0])+'</a>':esc(v[0]))+'</td>';
default:return '<td'+dv+'>'+esc(v)+'</td>';}}
function empty(x){return x===null||x===undefined||x==='';}

function DataTable(root){
var data=window.MUTATENN_DATA,name=root.getAttribute('data-table');
if(!data||!data[name]){root.querySelector('.dt-filters').textContent='The rows of this table '+
'are in report_files/report-data.js, which was not found beside this page.';return;}
var spec=data[name],cols=spec.columns,table=root.querySelector('table');
var ths=Array.from(table.tHead.rows[0].cells),useHash=root.hasAttribute('data-hash');
var index={},menus={},state={filters:{},sort:null,dir:1,page:0},shown=[];
cols.forEach(function(c,i){index[c.key]=i;});
function option(sel,c,v){var o=document.createElement('option');o.value=v;
o.textContent=c.label+': '+(c.kind==='bool'?(v==='1'?'yes':'no'):v);sel.appendChild(o);}
cols.forEach(function(c,i){if(!c.filter)return;var seen={};
spec.rows.forEach(function(r){seen[cellKey(c.kind,r[i])]=1;});
var sel=document.createElement('select');sel.name=c.key;
sel.innerHTML='<option value="">'+esc(c.label)+': all</option>';
Object.keys(seen).sort().forEach(function(v){option(sel,c,v);});
sel.addEventListener('change',function(){state.filters[c.key]=sel.value;state.page=0;update();});
menus[c.key]=sel;root.querySelector('.dt-filters').appendChild(sel);});
ths.forEach(function(th,i){th.classList.add('sortable');th.addEventListener('click',function(){
state.dir=state.sort===cols[i].key?-state.dir:1;state.sort=cols[i].key;update();});});
var pager=root.querySelector('.dt-pager');
pager.addEventListener('click',function(e){var go=e.target.getAttribute('data-go');
if(!go)return;state.page+=go==='next'?1:-1;update();});
function select(){var active=Object.keys(state.filters).filter(function(k){
return state.filters[k]!==''&&index[k]!==undefined;});
shown=spec.rows.filter(function(r){return active.every(function(k){var i=index[k];
return String(cellKey(cols[i].kind,r[i]))===state.filters[k];});});
var i=index[state.sort];if(i===undefined)return;var kind=cols[i].kind,d=state.dir;
shown.sort(function(a,b){var x=cellKey(kind,a[i]),y=cellKey(kind,b[i]);
if(empty(x)||empty(y))return empty(x)===empty(y)?0:empty(x)?1:-1;  // blanks last
if(typeof x==='string')x=x.toLowerCase();if(typeof y==='string')y=y.toLowerCase();
if(typeof x!==typeof y)return (typeof x==='number'?-1:1)*d;return (x<y?-1:x>y?1:0)*d;});}
function render(){var pages=Math.max(1,Math.ceil(shown.length/PAGE_ROWS));
state.page=Math.min(Math.max(state.page,0),pages-1);var start=state.page*PAGE_ROWS;
var killed=index.killed,status=index.status,n=cols.length;
function rowClass(r){if(killed!==undefined&&r[killed])return ' class="killed"';
var st=status===undefined?null:r[status];  // [.., survived?]: ran, no top-1 changed, not ignored
return st&&st[5]?' class="survived"':'';}
table.tBodies[0].innerHTML=shown.slice(start,start+PAGE_ROWS).map(function(r){
return '<tr'+(r.length>n?' data-key="'+esc(r[n])+'"':'')+rowClass(r)+'>'+
cols.map(function(c,i){return cellHtml(c.kind,r[i]);}).join('')+'</tr>';}).join('');
var i=index[state.sort];ths.forEach(function(th,j){th.classList.remove('asc','desc');
if(j===i)th.classList.add(state.dir>0?'asc':'desc');});
if(i!==undefined)table.setAttribute('data-sorted',state.sort+':'+(state.dir>0?'asc':'desc'));
pager.innerHTML=(state.page>0?'<button data-go="prev">‹ previous</button> ':'')+
'page '+(state.page+1)+' of '+pages+(state.page<pages-1?' <button data-go="next">next ›</button>':'')+
' · <span class="dt-count" data-shown="'+shown.length+'" data-total="'+spec.rows.length+'">'+
(shown.length?(start+1)+'–'+Math.min(start+PAGE_ROWS,shown.length):'0')+' of '+shown.length+
' rows'+(shown.length<spec.rows.length?' (filtered from '+spec.rows.length+')':'')+'</span>';}
function readHash(){var p=new URLSearchParams(location.hash.replace(/^#/,''));state.filters={};
Object.keys(menus).forEach(function(k){var v=p.get(k)||'',sel=menus[k];
if(v&&!Array.from(sel.options).some(function(o){return o.value===v;}))option(sel,cols[index[k]],v);
sel.value=v;state.filters[k]=v;});
var s=/^([A-Za-z0-9_]+)(?::(asc|desc))?$/.exec(p.get('sort')||'');
state.sort=s?s[1]:null;state.dir=s&&s[2]==='desc'?-1:1;
state.page=Math.max(0,(parseInt(p.get('page'),10)||1)-1);}
function writeHash(){var p=new URLSearchParams();Object.keys(state.filters).forEach(function(k){
if(state.filters[k])p.set(k,state.filters[k]);});
if(state.sort)p.set('sort',state.sort+':'+(state.dir>0?'asc':'desc'));
if(state.page)p.set('page',state.page+1);var h=p.toString().replace(/%3A/g,':');
if(h!==location.hash.replace(/^#/,''))history.replaceState(null,'',
h?'#'+h:location.pathname+location.search);}
function update(){select();render();if(useHash)writeHash();}
if(useHash){readHash();window.addEventListener('hashchange',function(){readHash();
select();render();root.scrollIntoView();});}
select();render();}

document.addEventListener('DOMContentLoaded',function(){
document.querySelectorAll('table.sortable').forEach(makeSortable);
document.querySelectorAll('div.dt').forEach(function(root){DataTable(root);});});
