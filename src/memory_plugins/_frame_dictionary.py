"""The LZ4 dictionary of version-2 log frames: frozen, part of the frame format.

Short turns give LZ4 too little to match within themselves; matched against a
dictionary of common English words they shrink by about 15%. The dictionary is
the 3,000 most frequent tokens of OpenAI's cl100k_base vocabulary (lowest BPE
rank first) that are a space then four or more lowercase ASCII letters, each kept
with its leading space, least frequent first (LZ4 prefers what is nearest the
data). Generated once, like this, and never to change: frames written with it
must read back forever (a new dictionary needs a new frame flag or version):

    toks = [t for t in cl100k_tokens_by_rank
            if t[:1] == b" " and t[1:].isalpha() and t[1:].islower() and len(t) >= 4]
    DICTIONARY = b"".join(reversed(toks[:3000]))
"""

from __future__ import annotations

import hashlib

__all__ = ["DICTIONARY"]

_SHA256 = "1efeae5d714df15a0333578dc7f0ada0763effcae1bca9827c6d0cf003915ab4"
_WORDS = """
marker trading vision fif inputs wonderful recipe domin conserv discovered organizations
recommended sac styled appearance discount plays sock teacher clim achieve feels sides proof
deleted fee categories feedback fell medium efficient rapid calculate reduced tough plane
windows follows pad trim lawy debate iron dictionary copies winning east stated proposed drugs
flight binding defe sudden magic lay worse worry measures massive helpful bott resolution auch
bot sed drag univers twice technical substant executive adopt leaves patch issued injury kom
seeking sexy merge smooth absolutely represents marriage broken joined combined truck pal
advanced mes wed determined hers sheet residents coding identified bond modified retail fighting
schema coffee moves versions decades addr bought mouth plants hearing cycle confirmed funding
talent craft possibly retrie shock apart honest communities tells absolute focused league
restaurant rating ack seat bind als competition skip prefer entries allowing putting doctor
forget phil performed standards snap comfortable cluster dur audience dst navigation utf brother
ich entered priority sorted ran uma intended combination faster linked intr mel radius turns
decor survey caught welcome mysql alternative sport rob prepare swe identify communication
stores pure cup concerns validation deploy adapt funds ele ideal defend mental apps stopped
chair doubt alleged opportunities gro sector mine ped helping stats samples locations spring
boot revealed incident becoming presented shooting conversation texture usage fuel homes tips
refresh acad rencontre rand religious vent yang kid bund sounds oppon animation proceed este
operating noted explain dataset ends procedure kick odd experienced seed pic zip nums maintain
photograph tight examples weapon joint citizens keeping decide properly dump installed rub quant
til hide phase prime isset lie loved segment sust sweet served discussion argv ber termin north
filled circum charges coverage policies tom chief influence emot spending orders asking exercise
occup pars enumer cer packet verify zone conven trav lif python theory blank optional watching
manage ptr award slightly lots lab checked flat ring artist aux dut canvas calc ignore mort
prepared tile changing occurred concent governing blocks mostly listed offering kernel rise
senior holds apparent nut climate husband diet supposed holding sam draft warning wind skill
afford mysqli prompt reverse crash sie situ bright solutions murder animals impress purposes
coff weapons positions god rom faith bug interval prepar mais native animal poly ice reply wear
approx propos driving purs yes sports willing gender ris eine conference brief south lin curr
daughter stone assign apprec unknown tail kitchen crime annual migr stored secure elim covered
relevant stars cond completion avec hyp flo critic mentioned decre wid appeared cities mys west
articles documentation hook thank schedule delivery instant creation jour registered parties
businesses pieces remaining nom assume incred pitch guid bal timeout tok advis accounts officers
validate tra eventually forced fab identity gather neighbor established bin appoint continues
deck innov androidx puts mixed steel movies hotel learned tags instr independent chart ended
limitations delta unf bits generation initialize automatically advice opinion officer slot
declar fol traffic furn cloud mess visible spect compare truly advantage aus species attend sea
earth span cancer redistribute minute beat leaving teen fprintf reli selector employee factors
presence justify clearly guar prison experiment tick thanks square cars asset labor seemed
attract submit metal temperature healthy shut susp century documents department district
exchange vac observ entre rid sand crow router finding cold prefix applied external construct
fav mas episode raised expand scr born styles clin stick aim angle labels pictures inner enemy
belong violence investment conflic criminal smaller trend candidate transition protection corner
agreement visual cancel seeing planning provider destination weather dan placed trial sich
agency widget rich tasks excellent electric matches strings wire scroll dry bes defense vel lose
hus becomes resp thousands showing execute critical timer het extremely gam older vous plugin
somew weekend surround glass haven occas pin mac managed rac enabled bag football ther mission
constit produced ban opened minor incor peace therefore spirit helped vill offered hat essay
extension restrict radio bath caused fmt rencont datetime amb motor indust branch efforts vir
clock spread rad prim trail rare goals listen toward updates resolve regarding meta whatever
despite church investigation heavy warn thr speech contents nicht meant generally knows farm
chain female hospital attacks baby ton integr benefit miles dos batter dynamic append compliance
reality grat dies gain patient monitor whom pros reflect redistrib remote processing lang
majority serve schools fear relative psych protest fat enh easier understanding capacity mir
separate extract terror challenge mouse reached mal guest factory onto heat satisf central helps
traditional kept mist previously male street numpy fant economy waiting happens continued scan
opening administration assess partners topic showed permissions polic biggest legis folder
families dress analy ult requirements sequence signed consult marketing definitely suff emp
containing responsible warranty guide runs starts died stress cin remains disease magn posted
thus www forces citiz connected highest chem upper applicable soft trip fan xml logging notes
disabled degree wild reviews tend eth corpor sig perhaps san applications fixed commercial een
cash frag quarter spend journal gay invalid transfer agent appropriate pun ahead refer replace
alpha signal ship strategy cookies loading wouldn civil feeling partner django traff employees
determine cat excell foc rout providing clients society burn sett negative flash tal warm
attributes produce gift claims tro trigger eat hidden sources balance boy strength factor squ
payment units spr supply columns mur completed tit upload larger implementation cursor volume
abstract insurance slight followed brain ans calling seven duration medic construction overall
instanceof nav mail eight shop finished station erot battle gone truth variety flags budget
science basis obvious minimum axis album rent interested arrest micro posts depth powerful
colors goto distribution danger emb reasons tele cos como appears reduce domain particularly
guess txt strugg oppos eye income generated distr dream failure amazing although sym permission
developed encour closed prev advant binary correspond scre mock numer aware poor reject mach
adding certainly torch growing owners studies fuck bon rates crusher fetch typeof affect nodes
beyond bur successfully assist smart jump suit sing individuals qui largest college cells boost
instit demonstr links transaction voice hundred pul assum symbol bey payload moved fresh detail
behavior compared increasing spot audio mechan hous couldn advert confirm ded straight suffer
culture doub compar leader doll fish aren purchase delay enum guard devices rect internet
instruction guys forms reset wood sat prices socket girls benefits essential transport optim
highly integer restaur feet yield director explo scen operations convers describe pod agree
adjust testing expression activities vec export alone places described demand firm mil weak
programs norm requires obs hop pointer sin exerc purpose killed records accur pers guy cards
located cart talking wife missing surv princip spent debug requests intent inline digital tools
effective gar builder skills officials steps celebr stories master workers opin variables
surface rap summer organization pool vehicle strict challeng multi daily meaning sets concept
enable emerg thinking definition improve teams pressure dialog photos supported coach sexual
unless materials earn agreed announced fully auf moving tour pan foreign fans broad movement
limited maybe birth maximum idx appropri scient queue increased paid terr zero beginning batch
safety anti remain aria partial interview gratis brought raw proced headers ple equipment
billion warrant plot giving poll projects rank figure immediately wer band launch costs thous
greater population interesting myself attribute alleg tests bul drink sometimes predict sun
handler independ cool nearly exam wall discover nation nature histor father define rows uns
towards dro looked removed physical race economic demon trust rock panel named liter recommend
happened career favorite browser generate destroy copyright altern writer fine props theme mask
vote exactly keys meas scope math jobs wide knew pow laws hair dans none lack obtain successful
classes dispatch lat shown comfort kids patients learning nullptr creating bound edge gas pages
pull throughout components prem videos picture wants temper tim layout earlier skin conduct
positive constant syn saved carry federal star arm basic huge depend charge pet ing brand calls
library education parser exists hear capital split pair ideas easily gives relig whose consist
adult reports tried fra pub difference credit grand loaded influ plans pain manager contain
opportunity decided measure sales fair gold dise heard das nov buf messages reader sites cam
selection practice completely professional piece parents desc trade morning mother shot gave
photo configuration cit blood drive knowledge von situation imag collect attention letter turned
plt mix growth considered setup roll cache cele international seconds modern felt mount speak
books controller hour medical ang dict editor worked meeting solid stage capt wish redirect
floor nice eyes shift involved flow leading treatment attr owner mobile rais pas computer
deliver analysis complex existing played loop club api nor package dark determin cast customers
lives blue slow solution town mention sale military stuff camera finish happy massage setting
management effects origin chat secret beautiful election directory repe surpr expert core reve
views layer designed une paint green ones matrix objects inn proper actions frequ cop weap
quickly escort middle allows serial equal wrote aud yourself implied sen park became scene env
shoot remember sens priv shared safe sold achie sleep shape offers hands sample bank led creat
hab inform updated comments gun leaders primary contr neighb route protect ord chance distance
began plant door customer serious ist usually grad introdu ensure arguments errors directly stri
structure drop systems otherwise username communic seek returned recently logger contrib
starting rule evidence threat financial requ respond properties released placeholder extrem
necessary looks levels ill login porno manufact qual countries prec hon recogn bus grid passed
sou travel bytes storage associated calcul inj natural worth built touch goal regular repl mis
reference goes ten legal wonder rev characters flex readonly choice pen rot experi functions jud
parameter ability accom license uses wasn sys provides sql activity sec movie sch establish
argument conv candid tor operator ren areas production operation machine insert tab avoid
includes held road ctx couple bottom playing undefined stack contains eval modify rules ful
charg dead stock oil category driver themselves sched alloc staff thems paper dog himself lost
damage weeks immedi counter reach deep region saf latest sense ready profile plus mat ways
convert drug kill finally changed channel song anyone saying approach saw decision parts
container court average student score scale mit technology cmd sil vers related train prote
elements impact allowed dir methods stre popular feed tool useful integ entity pattern living
iter prevent announc force platform images milit written arch problems script national cross
especially internal states padding standard lock notice clo reading align bre strateg leave html
commit increase receive various addition deg regard multiple focus van cause sem included endl
evid ign gets woman risk mut groups vict vert upon specified note particip flag hash implements
inde transform veh office choose fill subs las join soon lines contract alert statement sound
companies numbers additional direction dim resource mid progress una respect significant itself
higher performance cases fix fields actual effort names cout crush parameters relationship
currently menu longer pretty everyone descri blog quite autom settings coming difficult hom fem
appear etc takes unit maint seems wrong img resources reported extra industry political fit
memory fast simply ball shows matter dating byte tree pour beaut unique ground purch imm outside
shall release mag exit prior training recomm har serv bed third policy separ wanted raise
callback behind hor seg profession energy opport chall alt campaign friends round attempt tag
graph president inside however security cas questions building rather heart margin six former
exact educ perfect lower dom stay parse issues engine loss mer favor constructor module trad
exception conditions weight returns enjoy investig consum probably published potential term
sender concern failed crit forward viol taking doc speed music database further normal vector
party icon infl signific reserved asked general complete install compl environment ens lim via
feature connect applic sell almost article death active phone teach compan conn compet film coll
idea instead thread obt defined cult phot energ edit clos types please push sus board foot
namespace phys member trying entire indic bring moment necess son isn taken similar collection
minutes features believe pret elif indu development vol fall correct rate writing ein fight
likely needed whole invol events pie offset personal changes entry share someone mor running
nothing relations everything cook agre empty simple police half works sal quality stream land
issue discuss tre header words clean friend distributed five req age treat walk answer circ deb
among players implement click hit respons random accept suggest cred common neg net benef tmp
screen vot period auth pred register white cannot por due vari buffer fig students download easy
ago inf language center early models war hours anything virtual activ printf wor associ util
according selected ste gen dig front remove larg filter elect foreach comes deter draw frame
bill original hot series represent description background pur opp admin comment quick mind decl
learn ess particular anim months token received visit official community across fire went sizeof
cou cut limit network study website young hope filename provided variable live border seen exec
known needs bad products games took mode started future mot users individual history esc subject
econ template several fund others session apply terms throws together wait unsigned section
pract pack application track house msg interface strong box girl tax dam human watch pick doing
night location enter air claim comput getting handle root https card delete came buy added
component black fail media below material previous device news character impro certain except
abs contact global makes diff become connection params inc send bar comb members food indiv yet
expected major redu mar social items typ save face prob details format store password space info
often files les server happen understand conc aff million ident actually services ever points
though press problem deal dev web porn role host created fac large complet fre employ exc having
div whether cover publish research provide word question above switch review det opt task
thought sort den mom meet story means attack adv polit today price para low property pot hold
looking enough ben async amount late course font select tell eff city special pat move write
past percent close making dat record column expl least window query working auto equ told money
recent command enc sent didn btn sever possible dest season women ant rights anal single doesn
why thing win imp software begin express along specific author country near render experience
button lik away plan based miss camp example side light kind mus length area market until aut
mean mass grow talk continue results once room lib bas present far four times display government
step che water offer exist option family lead important either appro occ copy condition give men
able json love client later stop ann init include eng func consider school bro arr cent design
within reason organ javax instance online initial days cur distrib children obj args health
belie gre done company override short seem row techn clear load stat total offic hum cost player
cell prof cert video won beh values site die mult ver perform interest rest temp says invest
orig search boolean prom sure following bit valid lot der account less got parent always
including already feel better given link update appe status port fri little sum uint address job
protected access ide small height options cho called intern hard never might govern required
business disc email output ask chang mill prov partic await eas source custom come control red
url things throw keep block available proble stand produ something body turn full los non since
service leg fun effect care sit another node match ear dem len few pop map big tri tot date
success element project label width iss wom power against spe console during conf base law three
version gover book old position change coun pay catch src incre life met context title super
happ month great fore extends too poss develop float quest content local document config level
put both dep target image really rece around different page beg allow exper direct left home ret
writ android vis fact nil fam range going second team cour field rep cap assert provid still ref
sol without code struct response und program prop week oper information place double product ter
say contin mov order must head table between art input message build max real index action free
top comple day take report color main cre process world fin group mark made create same best
system err those sign sex mem cor own support each path game bool car href includ follow next
est open check med gener inst count http som much differ think such post found sur prot expect
method que style person echo param child request stud using good being many bel pres view sim
java ins default years object well num dec cal att call way mon model very run del final here
cons state dist because before tem does line high again event last inv through did don item even
down pass these help see log play used current find show pol text error mod fil std point every
break him now try most hand ser know could look spec dif rec while arg where size two key col
require number comp want trans form rel read par exp she array loc min ext rem long right after
make bet test should jav ind people how org may then reg under ent user start sub need back its
print only char act import first case list pos what into them result just static than also let
like ass comm her said there some val year our would file were had acc sup been other off use
when work part inter type des over string add about app value false any which man time who
private their pre null end true name dis one data per they his more else var set void const
function but def has out your will cont all self can get have str res public was not class int
are from new you return com pro with that this con for and the
"""
DICTIONARY = (" " + " ".join(_WORDS.split())).encode("ascii")
if hashlib.sha256(DICTIONARY).hexdigest() != _SHA256:  # pragma: no cover - a damaged install
    raise ImportError("memory_plugins/_frame_dictionary.py is damaged: reinstall memory-plugins")
